"""Quorum arithmetic (raft/quorum.py) against brute-force definitions.

The committed index of a config is the largest index that a majority of its voters has
acknowledged; a joint config's is the largest that a majority of BOTH halves acknowledged.
A vote is won when every way the missing voters could still vote wins, lost when none
does, pending otherwise. An empty config constrains nothing: it commits everything and
wins every vote, so that a joint config with an empty half reduces to the other half.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from raft.quorum import (
    INFINITE_INDEX,
    JointConfig,
    VoteResult,
    is_voter,
    majority,
    majority_committed_index,
    majority_vote_result,
)

node_ids = st.integers(min_value=1, max_value=9)
voter_sets = st.frozensets(node_ids, max_size=7)
acks = st.dictionaries(node_ids, st.integers(min_value=0, max_value=20), max_size=9)
votes = st.dictionaries(node_ids, st.booleans(), max_size=9)


def brute_committed(voters: frozenset[int], acked: Mapping[int, int]) -> int:
    if not voters:
        return INFINITE_INDEX
    candidates = {0} | {acked.get(voter, 0) for voter in voters}
    return max(
        index
        for index in candidates
        if sum(1 for voter in voters if acked.get(voter, 0) >= index) > len(voters) / 2
    )


def brute_joint_committed(
    incoming: frozenset[int], outgoing: frozenset[int], acked: Mapping[int, int]
) -> int:
    if not incoming and not outgoing:
        return INFINITE_INDEX
    candidates = {0} | {acked.get(voter, 0) for voter in incoming | outgoing}

    def holds(voters: frozenset[int], index: int) -> bool:
        if not voters:
            return True
        return sum(1 for voter in voters if acked.get(voter, 0) >= index) > len(voters) / 2

    return max(index for index in candidates if holds(incoming, index) and holds(outgoing, index))


def _wins(voters: frozenset[int], complete: Mapping[int, bool]) -> bool:
    return not voters or sum(1 for voter in voters if complete[voter]) > len(voters) / 2


def brute_vote(configs: list[frozenset[int]], cast: Mapping[int, bool]) -> VoteResult:
    """Enumerate every way the voters that have not voted yet could vote."""
    everyone = sorted(frozenset().union(*configs))
    missing = [voter for voter in everyone if voter not in cast]
    outcomes = set()
    for choice in itertools.product([True, False], repeat=len(missing)):
        complete = {voter: cast[voter] for voter in everyone if voter in cast}
        complete.update(zip(missing, choice, strict=True))
        outcomes.add(all(_wins(voters, complete) for voters in configs))
    if outcomes == {True}:
        return VoteResult.WON
    if outcomes == {False}:
        return VoteResult.LOST
    return VoteResult.PENDING


def test_majority_is_more_than_half() -> None:
    assert [majority(count) for count in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


@given(voter_sets, acks)
def test_majority_committed_index_is_largest_index_a_majority_acknowledged(
    voters: frozenset[int], acked: dict[int, int]
) -> None:
    assert majority_committed_index(voters, acked) == brute_committed(voters, acked)


@given(voter_sets, voter_sets, acks)
def test_joint_committed_index_is_largest_index_both_majorities_acknowledged(
    incoming: frozenset[int], outgoing: frozenset[int], acked: dict[int, int]
) -> None:
    config = JointConfig(incoming, outgoing)
    assert config.committed_index(acked) == brute_joint_committed(incoming, outgoing, acked)


@given(voter_sets, votes)
def test_majority_vote_result_matches_every_completion_of_missing_votes(
    voters: frozenset[int], cast: dict[int, bool]
) -> None:
    cast = {voter: vote for voter, vote in cast.items() if voter in voters}
    assert majority_vote_result(voters, cast) is brute_vote([voters], cast)


@given(voter_sets, voter_sets, votes)
def test_joint_vote_result_matches_every_completion_of_missing_votes(
    incoming: frozenset[int], outgoing: frozenset[int], cast: dict[int, bool]
) -> None:
    cast = {voter: vote for voter, vote in cast.items() if voter in incoming | outgoing}
    config = JointConfig(incoming, outgoing)
    assert config.vote_result(cast) is brute_vote([incoming, outgoing], cast)


def test_empty_config_commits_everything_and_wins_every_vote() -> None:
    assert majority_committed_index(frozenset(), {1: 5}) == INFINITE_INDEX
    assert majority_vote_result(frozenset(), {}) is VoteResult.WON
    assert JointConfig(frozenset()).committed_index({}) == INFINITE_INDEX


def test_joint_config_with_empty_outgoing_half_is_the_incoming_majority() -> None:
    config = JointConfig(frozenset({1, 2, 3}))
    assert not config.is_joint()
    assert config.committed_index({1: 7, 2: 5, 3: 1}) == 5
    assert config.vote_result({1: True, 2: True}) is VoteResult.WON


def test_joint_commit_needs_both_majorities() -> None:
    config = JointConfig(frozenset({1, 2, 4}), frozenset({1, 2, 3}))
    # 1 and 3 hold index 9: a majority of the outgoing half, not of the incoming one.
    assert config.committed_index({1: 9, 3: 9, 2: 4, 4: 2}) == 4
    assert config.committed_index({1: 9, 2: 9}) == 9


def test_joint_vote_is_lost_when_either_half_rejects() -> None:
    config = JointConfig(frozenset({1, 2, 3}), frozenset({3, 4, 5}))
    assert config.vote_result({1: True, 2: True, 4: False, 5: False}) is VoteResult.LOST
    assert config.vote_result({1: True, 2: True, 4: True}) is VoteResult.PENDING
    assert config.vote_result({1: True, 2: True, 4: True, 5: True}) is VoteResult.WON


def test_is_voter_counts_both_halves_and_never_node_zero() -> None:
    config = JointConfig(frozenset({1, 2}), frozenset({2, 3}))
    assert is_voter(config, 3)
    assert not is_voter(config, 4)
    assert not is_voter(config, 0)
