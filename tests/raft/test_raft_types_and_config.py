"""Plain values of the core: ConfChange encoding and transitions (raft/types.py) and Config
validation (raft/core.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raft import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    Config,
    ConfState,
    MemoryStorage,
    MessageType,
    RawNode,
    ReadOnlyOption,
)
from raft.types import add_learner, add_voter, remove_node, vote_response_type

singles = st.builds(
    ConfChangeSingle, st.sampled_from(ConfChangeType), st.integers(min_value=0, max_value=2**40)
)
conf_changes = st.builds(
    ConfChange,
    st.lists(singles, max_size=5).map(tuple),
    st.sampled_from(ConfChangeTransition),
    st.binary(max_size=32),
)


@given(conf_changes)
def test_conf_change_survives_encode_then_decode(change: ConfChange) -> None:
    assert ConfChange.decode(change.encode()) == change
    assert change.to_entry_data() == change.encode()


def test_conf_change_with_no_changes_and_auto_transition_means_leave_joint() -> None:
    assert ConfChange().leave_joint()
    assert not ConfChange(transition=ConfChangeTransition.JOINT_EXPLICIT).leave_joint()
    assert not add_voter(2).leave_joint()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (add_voter(4), (False, False)),  # one change, auto: applied directly
        (ConfChange(add_voter(4).changes + remove_node(3).changes), (True, True)),
        (ConfChange(add_voter(4).changes, ConfChangeTransition.JOINT_IMPLICIT), (True, True)),
        (ConfChange(add_learner(4).changes, ConfChangeTransition.JOINT_EXPLICIT), (True, False)),
    ],
    ids=["single", "several-auto", "implicit", "explicit"],
)
def test_enter_joint_says_whether_joint_and_whether_it_leaves_by_itself(
    change: ConfChange, expected: tuple[bool, bool]
) -> None:
    assert change.enter_joint() == expected


def test_vote_response_type_pairs_requests_with_their_answers() -> None:
    assert vote_response_type(MessageType.VOTE) is MessageType.VOTE_RESPONSE
    assert vote_response_type(MessageType.PRE_VOTE) is MessageType.PRE_VOTE_RESPONSE
    with pytest.raises(ValueError, match="not a vote"):
        vote_response_type(MessageType.APPEND)


def test_conf_state_members_are_voters_learners_and_outgoing_voters() -> None:
    conf = ConfState(voters=(1, 2), learners=(5,), voters_outgoing=(2, 3))
    assert conf.members() == {1, 2, 3, 5}


# -- Config.validate ------------------------------------------------------------------------------


def config(**overrides: object) -> Config:
    fields: dict[str, object] = {"id": 1, "storage": MemoryStorage(), **overrides}
    return Config(**fields)  # type: ignore[arg-type]


def test_default_config_is_valid() -> None:
    config().validate()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": 0}, "node id"),
        ({"heartbeat_ticks": 0}, "heartbeat_ticks"),
        ({"election_ticks": 1, "heartbeat_ticks": 1}, "election_ticks"),
        ({"max_inflight_msgs": 0}, "in-flight"),
        ({"max_inflight_bytes": 0}, "in-flight"),
        ({"lease_margin_ticks": -1}, "lease_margin_ticks"),
        ({"lease_margin_ticks": 10}, "lease_margin_ticks"),
        (
            {"read_only_option": ReadOnlyOption.LEASE_BASED, "check_quorum": False},
            "check_quorum",
        ),
    ],
    ids=[
        "node-zero",
        "no-heartbeat",
        "election-not-above-heartbeat",
        "no-inflight-msgs",
        "no-inflight-bytes",
        "negative-lease-margin",
        "lease-margin-eats-the-lease",
        "lease-without-check-quorum",
    ],
)
def test_config_validate_refuses(overrides: dict[str, object], message: str) -> None:
    candidate = config(**overrides)
    with pytest.raises(ValueError, match=message):
        candidate.validate()
    with pytest.raises(ValueError, match=message):
        RawNode(candidate)  # the core validates its config before anything else
