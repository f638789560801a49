"""The Raft state machine: elections, replication, reads, transfers and membership.

This module owns the protocol rules. It has no clock (time is `tick()`), no network
(messages in through `step`, out through `msgs`), no disk (the application persists what a
Ready hands it) and no randomness but the RNG it is given. It must never perform I/O or
import anything outside the standard library. Each role has its own step function behind
the common `step`, which checks terms first.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field, replace

from raft import confchange, defects
from raft.defects import Defect
from raft.errors import (
    CompactedError,
    ConfChangeError,
    ProposalDroppedError,
    SnapshotTemporarilyUnavailableError,
    UnavailableError,
)
from raft.log import RaftLog
from raft.progress import Progress, ProgressState
from raft.quorum import VoteResult
from raft.read_only import ReadOnly, ReadOnlyOption
from raft.storage import NO_LIMIT, Storage
from raft.tracker import ProgressTracker, TrackerConfig
from raft.types import (
    CAMPAIGN_TRANSFER,
    NONE,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
    vote_response_type,
)


class CampaignType(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


@dataclass(slots=True)
class Config:
    """How one node's core behaves. Every bound carries its unit in its name."""

    id: int
    storage: Storage
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    election_ticks: int = 10
    """Followers wait at least this many ticks (randomised up to twice it) before campaigning."""
    heartbeat_ticks: int = 1
    applied: int = 0
    """The last index the application applied before a restart."""
    max_append_bytes: int = 1 << 20
    """Entries per append message, in bytes (at least one entry is always sent)."""
    max_apply_bytes: int = 8 << 20
    """Committed entries handed to the application per Ready, in bytes."""
    max_uncommitted_bytes: int = 64 << 20
    """Proposals the leader holds uncommitted before it refuses more."""
    max_inflight_msgs: int = 256
    """Pipelined appends in flight per follower."""
    max_inflight_bytes: int = 32 << 20
    max_pending_reads: int = 4096
    check_quorum: bool = True
    pre_vote: bool = True
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    lease_margin_ticks: int = 1
    """How much shorter than an election timeout the leader lease is, for clock drift."""
    disable_proposal_forwarding: bool = False

    def validate(self) -> None:
        if self.id == NONE:
            raise ValueError("node id must not be 0")
        if self.heartbeat_ticks <= 0:
            raise ValueError("heartbeat_ticks must be positive")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        if self.max_inflight_msgs <= 0 or self.max_inflight_bytes <= 0:
            raise ValueError("in-flight limits must be positive")
        if not 0 <= self.lease_margin_ticks < self.election_ticks:
            raise ValueError("lease_margin_ticks must be in [0, election_ticks)")
        if self.read_only_option is ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            raise ValueError("lease-based reads need check_quorum")


def _stamped(m: Message, sender: int, term: int) -> Message:
    """`m` from `sender` in `term` (dataclasses.replace, minus its cost on the hot path)."""
    if m.sender == sender and m.term == term:
        return m
    return Message(
        m.type,
        m.to,
        sender,
        term,
        m.log_term,
        m.index,
        m.entries,
        m.commit,
        m.snapshot,
        m.reject,
        m.reject_hint,
        m.context,
        m.lease_tick,
    )


def _payload_size(entries: list[Entry]) -> int:
    return sum(len(entry.data) for entry in entries)


class Raft:
    def __init__(self, config: Config) -> None:
        config.validate()
        self.id = config.id
        self.log = RaftLog(config.storage, config.max_apply_bytes)
        self.term = 0
        self.vote = NONE
        self.state = StateType.FOLLOWER
        self.is_learner = False
        self.lead = NONE
        self.lead_transferee = NONE
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.trk = ProgressTracker(config.max_inflight_msgs, config.max_inflight_bytes)
        self.read_only = ReadOnly(config.read_only_option, config.max_pending_reads)
        self.pending_read_index_messages: list[Message] = []
        # Only one conf change may be pending: proposals are refused while applied < this.
        self.pending_conf_index = 0
        self.uncommitted_bytes = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = 0
        # Logical clock: ticks since this incarnation started. Leases are measured on it.
        self.clock = 0
        # Once a leader sends TimeoutNow in a term, a forced election may depose it at any
        # moment, so it serves no more lease reads in that term.
        self.timeout_now_sent = False
        # Proposals append immediately but are broadcast once per Ready: one append carries
        # every proposal made since the last Ready (batching).
        self.broadcast_pending = False
        # Voters of the config before the last applied conf change (see promotable).
        self.previous_voters: frozenset[int] = frozenset()
        # Counts the responses a leader receives; ranks followers for read rounds (see
        # _note_acknowledgement).
        self.response_seq = 0

        self.election_timeout = config.election_ticks
        self.heartbeat_timeout = config.heartbeat_ticks
        self.max_append_bytes = config.max_append_bytes
        self.max_uncommitted_bytes = config.max_uncommitted_bytes
        self.max_pending_reads = config.max_pending_reads
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.lease_margin_ticks = config.lease_margin_ticks
        self.disable_proposal_forwarding = config.disable_proposal_forwarding
        self.rng = config.rng

        hard_state, conf_state = config.storage.initial_state()
        tracker_config, progress = confchange.restore(
            conf_state, self.log.last_index(), config.max_inflight_msgs, config.max_inflight_bytes
        )
        self.switch_to_config(tracker_config, progress)
        if not hard_state.is_empty():
            self._load_state(hard_state)
        if config.applied > 0:
            self.log.applied_to(config.applied)
        self.become_follower(self.term, NONE)

    def __repr__(self) -> str:
        return (
            f"Raft(id={self.id} {self.state.value} term={self.term} vote={self.vote} "
            f"lead={self.lead} {self.log!r})"
        )

    # -- state snapshots ----------------------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, state=self.state)

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def _load_state(self, state: HardState) -> None:
        if state.commit > self.log.last_index():
            raise ValueError(
                f"hard state commit {state.commit} past the last index {self.log.last_index()}"
            )
        # A crash between persisting a snapshot and its hard state leaves a commit index
        # below the snapshot: everything in a snapshot is committed, so the snapshot wins.
        self.log.committed = max(self.log.committed, state.commit)
        self.term = state.term
        self.vote = state.vote

    def promotable(self) -> bool:
        """Whether this node may campaign.

        A voter may. So may a node that the last conf change it applied removed from the
        voters: the others may not know yet that the change committed, still count on its
        vote, and refuse it because its log is newer than theirs. If it could not lead, no
        one could (openraft#2091). Its own vote does not count: quorums are those of its
        config.
        """
        if self.log.has_pending_snapshot():
            return False
        if self.is_voter():
            return True
        return self.id in self.previous_voters

    def is_voter(self) -> bool:
        return self.id in self.trk.config.voters.ids()

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        sender = message.sender or self.id
        if message.type in (
            MessageType.VOTE,
            MessageType.VOTE_RESPONSE,
            MessageType.PRE_VOTE,
            MessageType.PRE_VOTE_RESPONSE,
        ):
            # Vote messages carry the term they are for, which may be ahead of ours.
            assert message.term != 0, f"{message.type.name} without a term"
            self.msgs.append(_stamped(message, sender, message.term))
            return
        assert message.term == 0, f"{message.type.name} with a preset term"
        # Proposals and read requests forwarded to the leader are local in spirit: no term.
        term = 0 if message.type in (MessageType.PROPOSE, MessageType.READ_INDEX) else self.term
        self.msgs.append(_stamped(message, sender, term))

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, send_if_empty=True)

    def maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send entries (or a snapshot) to `to` unless its flow is paused."""
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        previous = pr.next - 1
        try:
            previous_term = self.log.term(previous)
            entries: list[Entry] = []
            # With a full window only an empty append goes out: its answer (or rejection)
            # tells us whether the appends in flight were lost, and unblocks replication.
            if pr.state is not ProgressState.REPLICATE or not pr.inflights.full():
                entries = self.log.entries(pr.next, self.max_append_bytes)
        except CompactedError:
            return self._maybe_send_snapshot(to, pr)
        if not entries and not send_if_empty:
            return False
        self.send(
            Message(
                type=MessageType.APPEND,
                to=to,
                index=previous,
                log_term=previous_term,
                entries=tuple(entries),
                commit=self.log.committed,
                lease_tick=self.clock,
            )
        )
        if entries:
            pr.sent_entries(entries[-1].index, sum(entry.size() for entry in entries))
        return True

    def _maybe_send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # do not ship a snapshot to a peer that may be down
        try:
            snapshot = self.log.snapshot()
        except SnapshotTemporarilyUnavailableError:
            return False
        assert not snapshot.is_empty(), "need a non-empty snapshot"
        pr.become_snapshot(snapshot.metadata.index)
        self.send(Message(type=MessageType.SNAPSHOT, to=to, snapshot=snapshot))
        return True

    def send_heartbeat(self, to: int, ctx: bytes) -> None:
        # The follower may not have every committed entry: never tell it to commit past match.
        commit = min(self.trk.progress[to].match, self.log.committed)
        self.send(
            Message(
                type=MessageType.HEARTBEAT,
                to=to,
                commit=commit,
                context=ctx,
                lease_tick=self.clock,
            )
        )

    def bcast_append(self) -> None:
        for node in sorted(self.trk.progress):
            if node != self.id:
                self.send_append(node)

    def send_read_round(self, ctx: bytes) -> None:
        """Ask the followers to confirm our leadership for the read round `ctx`.

        Only the voters that complete a quorum with us are asked, those that acknowledged
        most freshly and fastest (ProgressTracker.read_round_voters); all voters when
        there is no such choice. Learners never are: their acks do not count.

        Safety does not depend on the choice: a read is released only once a quorum of
        voters acknowledged its ctx or a later one (ReadOnly.advance). Liveness does not
        either, because a round whose chosen follower is slow, dead or cut off does not
        wait for it: every periodic heartbeat (_tick_heartbeat -> BEAT -> bcast_heartbeat)
        carries the newest pending ctx to every member, and a quorum of acks for it
        releases it and every read queued before it. So a pending read is at most one
        heartbeat interval from reaching every live voter, as before; the choice only
        spares the other followers an exchange per round. The answers to that heartbeat
        also rank the live followers above the silent one for the next rounds.
        """
        chosen = self.trk.read_round_voters(self.id)
        if chosen is None:
            chosen = [node for node in self.trk.voter_nodes() if node != self.id]
        for node in chosen:
            self.send_heartbeat(node, ctx)

    def bcast_heartbeat(self, ctx: bytes | None = None) -> None:
        if ctx is None:
            ctx = self.read_only.last_pending_request_ctx()
        for node in sorted(self.trk.progress):
            if node != self.id:
                self.send_heartbeat(node, ctx)

    def flush(self) -> None:
        """Broadcast proposals appended since the last Ready, in one append per follower."""
        if self.broadcast_pending:
            self.broadcast_pending = False
            if self.state is StateType.LEADER:
                self.bcast_append()

    # -- committing ---------------------------------------------------------------------------

    def maybe_commit(self) -> bool:
        index = self.trk.committed()
        if defects.active(Defect.COMMIT_PREVIOUS_TERM_BY_COUNTING):
            return self.log.commit_by_counting(min(index, self.log.last_index()))
        return self.log.maybe_commit(index, self.term)

    def committed_entry_in_current_term(self) -> bool:
        return self.log.term_or_zero(self.log.committed) == self.term

    # -- role transitions ---------------------------------------------------------------------

    def reset(self, term: int) -> None:
        if self.term != term:
            assert term > self.term, f"term went backwards: {self.term} -> {term}"
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.trk.reset_votes()
        last_index = self.log.last_index()
        for node, pr in list(self.trk.progress.items()):
            fresh = Progress(
                next_index=last_index + 1,
                inflights=pr.inflights,
                is_learner=pr.is_learner,
                match=last_index if node == self.id else 0,
            )
            fresh.inflights.reset()
            self.trk.progress[node] = fresh
        self.pending_conf_index = 0
        self.uncommitted_bytes = 0
        self.read_only.reset()
        self.pending_read_index_messages = []
        self.timeout_now_sent = False
        self.broadcast_pending = False

    def reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(
            self.election_timeout
        )

    def become_follower(self, term: int, lead: int) -> None:
        self.reset(term)
        self.lead = lead
        self.state = StateType.FOLLOWER

    def become_candidate(self) -> None:
        assert self.state is not StateType.LEADER, "leader cannot become candidate"
        self.reset(self.term + 1)
        self.vote = self.id
        self.state = StateType.CANDIDATE

    def become_pre_candidate(self) -> None:
        assert self.state is not StateType.LEADER, "leader cannot become pre-candidate"
        # A pre-candidate changes neither term nor vote: it only asks whether it could win.
        self.trk.reset_votes()
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE

    def become_leader(self) -> None:
        assert self.state is not StateType.FOLLOWER, "follower cannot become leader directly"
        self.reset(self.term)
        self.lead = self.id
        self.state = StateType.LEADER
        own = self.trk.progress.get(self.id)
        if own is not None:  # a removed node may lead briefly (see promotable)
            own.become_replicate()
        # Conservatively treat every uncommitted entry as a possible conf change.
        self.pending_conf_index = self.log.last_index()
        # An empty entry of our term lets us commit (and so learn) everything before it.
        appended = self.append_entry([Entry()])
        assert appended, "empty entry must always be accepted"
        self.broadcast_pending = True

    # -- elections ----------------------------------------------------------------------------

    def hup(self, campaign: CampaignType) -> None:
        if self.state is StateType.LEADER:
            return
        if not self.promotable():
            return
        if self.has_unapplied_conf_changes():
            return  # the config we would campaign under is not final yet
        self.campaign(campaign)

    def has_unapplied_conf_changes(self) -> bool:
        if self.log.applied >= self.log.committed:
            return False
        entries = self.log.slice(self.log.applied + 1, self.log.committed + 1, NO_LIMIT)
        return any(entry.type is EntryType.CONF_CHANGE for entry in entries)

    def campaign(self, campaign: CampaignType) -> None:
        if campaign is CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_type = MessageType.PRE_VOTE
            term = self.term + 1  # the term we would campaign in; ours does not change yet
        else:
            self.become_candidate()
            vote_type = MessageType.VOTE
            term = self.term
        _, _, result = self.poll(self.id, True)
        if result is VoteResult.WON:
            # A single-voter cluster wins at once.
            if campaign is CampaignType.PRE_ELECTION:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if campaign is CampaignType.TRANSFER else b""
        for node in self.trk.voter_nodes():
            if node == self.id:
                continue
            self.send(
                Message(
                    type=vote_type,
                    to=node,
                    term=term,
                    index=self.log.last_index(),
                    log_term=self.log.last_term(),
                    context=ctx,
                )
            )

    def poll(self, node: int, granted: bool) -> tuple[int, int, VoteResult]:
        self.trk.record_vote(node, granted)
        return self.trk.tally_votes()

    def in_lease(self) -> bool:
        """Whether this node must refuse to help depose the current leader.

        A follower that heard from a leader less than an election timeout ago, or that
        started less than an election timeout ago (it may have acknowledged a leader just
        before crashing), grants no (pre-)votes: this is what makes leader leases safe.
        """
        if not self.check_quorum:
            return False
        if self.clock < self.election_timeout:
            return True
        return self.lead != NONE and self.election_elapsed < self.election_timeout

    # -- time ---------------------------------------------------------------------------------

    def tick(self) -> None:
        self.clock += 1
        if self.state is StateType.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.step(Message(type=MessageType.HUP, sender=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MessageType.CHECK_QUORUM, sender=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.state is StateType.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state is not StateType.LEADER:
            return
        if not self.is_voter() and self.lead_transferee == NONE:
            self._hand_over_leadership()
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MessageType.BEAT, sender=self.id))

    # -- the common step ----------------------------------------------------------------------

    def step(self, m: Message) -> None:
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if m.type in (MessageType.VOTE, MessageType.PRE_VOTE):
                forced = m.context == CAMPAIGN_TRANSFER
                if not forced and self.in_lease():
                    # We heard from a leader recently: do not update the term or vote.
                    return
            if m.type is MessageType.PRE_VOTE:
                pass  # never change our term in response to a pre-vote
            elif m.type is MessageType.PRE_VOTE_RESPONSE and not m.reject:
                pass  # a granted pre-vote carries the future term; we become candidate later
            elif m.type in (MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT):
                self.become_follower(m.term, m.sender)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (
                MessageType.HEARTBEAT,
                MessageType.APPEND,
            ):
                # A stale leader: tell it our term so it steps down. Without this, a node
                # partitioned away and back could never be caught up (check-quorum/pre-vote
                # keep us from bumping its term through votes).
                self.send(Message(type=MessageType.APPEND_RESPONSE, to=m.sender))
            elif m.type is MessageType.PRE_VOTE:
                self.send(
                    Message(
                        type=MessageType.PRE_VOTE_RESPONSE,
                        to=m.sender,
                        term=self.term,
                        reject=True,
                    )
                )
            return

        if m.type is MessageType.HUP:
            self.hup(CampaignType.PRE_ELECTION if self.pre_vote else CampaignType.ELECTION)
        elif m.type in (MessageType.VOTE, MessageType.PRE_VOTE):
            self._handle_vote_request(m)
        elif self.state is StateType.LEADER:
            self.step_leader(m)
        elif self.state in (StateType.CANDIDATE, StateType.PRE_CANDIDATE):
            self.step_candidate(m)
        else:
            self.step_follower(m)

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.sender
            or (self.vote == NONE and self.lead == NONE)
            # A pre-vote for a future term is granted if the log is good enough.
            or (m.type is MessageType.PRE_VOTE and m.term > self.term)
        )
        log_ok = defects.active(Defect.VOTE_WITHOUT_LOG_CHECK) or self.log.is_up_to_date(
            m.index, m.log_term
        )
        if can_vote and log_ok and self._rival_pre_candidate(m):
            return  # unanswered, like a pre-vote to a voter in lease
        response = vote_response_type(m.type)
        if can_vote and log_ok:
            # Answer with the term of the request, so the candidate counts it.
            self.send(Message(type=response, to=m.sender, term=m.term))
            if m.type is MessageType.VOTE:
                self.election_elapsed = 0
                self.vote = m.sender
        else:
            self.send(Message(type=response, to=m.sender, term=self.term, reject=True))

    def _rival_pre_candidate(self, m: Message) -> bool:
        """Whether `m` is a pre-vote from a rival that this pre-candidate leaves unanswered:
        one with a higher id and a log no more up to date than ours.

        Two pre-candidates that ask each other at the same moment (both followers heard
        the leader is gone) would otherwise grant each other, both become candidates, and
        split the vote of a three-node group: an extra election timeout. Only pre-votes
        go unanswered, which change no term or vote, so this decides nothing but who runs
        first; the rival gets our vote once we fail, and follows us once we win.
        """
        return (
            m.type is MessageType.PRE_VOTE
            and self.state is StateType.PRE_CANDIDATE
            and self.id < m.sender
            and (self.log.last_term(), self.log.last_index()) >= (m.log_term, m.index)
        )

    # -- leader -------------------------------------------------------------------------------

    def step_leader(self, m: Message) -> None:
        if m.type is MessageType.BEAT:
            self.bcast_heartbeat()
            return
        if m.type is MessageType.CHECK_QUORUM:
            if not self.trk.quorum_active():
                self.become_follower(self.term, NONE)
            for node, peer in self.trk.progress.items():
                if node != self.id:
                    peer.recent_active = False
            return
        if m.type is MessageType.PROPOSE:
            self._leader_propose(m)
            return
        if m.type is MessageType.READ_INDEX:
            self._leader_read_index(m)
            return

        pr = self.trk.progress.get(m.sender)
        if pr is None:
            return  # from a node not (or no longer) in the configuration
        if m.type is MessageType.APPEND_RESPONSE:
            self._leader_append_response(m, pr)
        elif m.type is MessageType.HEARTBEAT_RESPONSE:
            self._leader_heartbeat_response(m, pr)
        elif m.type is MessageType.SNAPSHOT_STATUS:
            if pr.state is not ProgressState.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for the next heartbeat response before probing, whatever the outcome.
            pr.msg_app_flow_paused = True
        elif m.type is MessageType.UNREACHABLE:
            if pr.state is ProgressState.REPLICATE:
                pr.become_probe()
        elif m.type is MessageType.TRANSFER_LEADER:
            self._leader_transfer(m, pr)

    def _leader_propose(self, m: Message) -> None:
        if not m.entries:
            raise ValueError("propose without entries")
        if not self.is_voter():
            raise ProposalDroppedError("this node is not a voter of the configuration")
        if self.lead_transferee != NONE:
            raise ProposalDroppedError(f"leadership is being transferred to {self.lead_transferee}")
        entries = list(m.entries)
        for position, entry in enumerate(entries):
            if entry.type is not EntryType.CONF_CHANGE:
                continue
            change = ConfChange.decode(entry.data)
            already_pending = self.pending_conf_index > self.log.applied
            already_joint = self.trk.config.voters.is_joint()
            wants_leave_joint = not change.changes
            if (
                already_pending
                or (already_joint and not wants_leave_joint)
                or (not already_joint and wants_leave_joint)
            ):
                # Refused: keep the position in the batch with an empty entry instead.
                entries[position] = Entry()
            else:
                self.pending_conf_index = self.log.last_index() + position + 1
        if not self.append_entry(entries):
            raise ProposalDroppedError("too many uncommitted bytes on the leader")
        self.broadcast_pending = True

    def append_entry(self, entries: list[Entry]) -> bool:
        last_index = self.log.last_index()
        stamped = [
            Entry(term=self.term, index=last_index + 1 + position, type=entry.type, data=entry.data)
            for position, entry in enumerate(entries)
        ]
        size = _payload_size(stamped)
        if (
            self.uncommitted_bytes > 0
            and self.uncommitted_bytes + size > self.max_uncommitted_bytes
        ):
            return False
        self.uncommitted_bytes += size
        last_index = self.log.append(stamped)
        own = self.trk.progress.get(self.id)
        if own is not None:
            own.maybe_update(last_index)
        # A single-voter cluster commits here; otherwise this is a no-op until acks arrive.
        self.maybe_commit()
        return True

    def _leader_read_index(self, m: Message) -> None:
        if self.trk.is_singleton():
            self._respond_read_index(m, self.log.committed)
            return
        if not self.committed_entry_in_current_term():
            # Our commit index may be behind the true one until an entry of our term commits.
            if len(self.pending_read_index_messages) < self.max_pending_reads:
                self.pending_read_index_messages.append(m)
            return
        self._send_read_index(m)

    def _send_read_index(self, m: Message) -> None:
        if defects.active(Defect.READ_INDEX_WITHOUT_QUORUM) or (
            self.read_only.option is ReadOnlyOption.LEASE_BASED and self.lease_valid()
        ):
            self._respond_read_index(m, self.log.committed)
            return
        ctx = m.entries[0].data
        if not self.read_only.add_request(self.log.committed, m):
            return  # too many reads pending: dropped, the client will time out and retry
        self.read_only.recv_ack(self.id, ctx)
        self.send_read_round(ctx)

    def _respond_read_index(self, m: Message, index: int) -> None:
        ctx = m.entries[0].data
        if m.sender in (NONE, self.id):
            self.read_states.append(ReadState(index=index, request_ctx=ctx))
        else:
            self.send(
                Message(
                    type=MessageType.READ_INDEX_RESPONSE,
                    to=m.sender,
                    index=index,
                    entries=m.entries,
                )
            )

    def lease_valid(self) -> bool:
        """Whether no other leader can exist right now, judged without a message round.

        Voters that acknowledged a message we sent at logical time t refuse votes until an
        election timeout after they received it (see in_lease), so no quorum can elect
        anyone else before t + election timeout on our clock.
        """
        if defects.active(Defect.LEASE_READ_WITHOUT_QUORUM):
            return True
        if not self.check_quorum or self.timeout_now_sent or self.lead_transferee != NONE:
            return False
        lease_start = self.trk.quorum_lease_tick(self.id, self.clock)
        return self.clock < lease_start + self.election_timeout - self.lease_margin_ticks

    def _release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages:
            return
        if not self.committed_entry_in_current_term():
            return
        pending, self.pending_read_index_messages = self.pending_read_index_messages, []
        for m in pending:
            self._send_read_index(m)

    def _note_acknowledgement(self, pr: Progress, lease_tick: int) -> None:
        """A response from `pr`'s peer to a message we sent at `lease_tick`.

        Besides the lease, it ranks the peer for read rounds: the first answer to a message
        of a newer tick takes the next response number, so among peers at the same tick
        the fastest has the lowest; a peer that stops answering falls behind in ticks.
        """
        pr.recent_active = True
        if lease_tick > pr.lease_ack_tick or pr.lease_ack_seq == 0:
            self.response_seq += 1
            pr.lease_ack_seq = self.response_seq
            pr.lease_ack_tick = max(pr.lease_ack_tick, lease_tick)

    def _leader_append_response(self, m: Message, pr: Progress) -> None:
        self._note_acknowledgement(pr, m.lease_tick)
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of ours whose term is above the follower's at the hint.
                next_probe = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decrease_to(m.index, next_probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self.send_append(m.sender)
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= self.log.first_index():
            # The follower caught up past the snapshot (or from the log): replicate again.
            pr.become_probe()
            pr.become_replicate()
        elif pr.state is ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        elif was_paused:
            self.send_append(m.sender)
        # Fill the window: bounded by the in-flight limit.
        while self.maybe_send_append(m.sender, send_if_empty=False):
            pass
        if m.sender == self.lead_transferee and pr.match == self.log.last_index():
            self.send_timeout_now(m.sender)

    def _leader_heartbeat_response(self, m: Message, pr: Progress) -> None:
        self._note_acknowledgement(pr, m.lease_tick)
        pr.msg_app_flow_paused = False
        if pr.match < self.log.last_index() or pr.state is ProgressState.PROBE:
            self.send_append(m.sender)
        if self.read_only.option is not ReadOnlyOption.SAFE and not self.read_only.pending:
            return
        if not m.context:
            return
        acks = self.read_only.recv_ack(m.sender, m.context)
        if acks is None or self.trk.config.voters.vote_result(acks) is not VoteResult.WON:
            return
        for status in self.read_only.advance(m.context):
            self._respond_read_index(status.request, status.index)

    def _leader_transfer(self, m: Message, pr: Progress) -> None:
        if pr.is_learner:
            return  # a learner cannot lead
        transferee = m.sender
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return  # already transferring to it
            self.abort_leader_transfer()
        if transferee == self.id:
            return
        # The transfer must finish within one election timeout.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.log.last_index():
            self.send_timeout_now(transferee)
        else:
            self.send_append(transferee)

    def _hand_over_leadership(self) -> None:
        """We lead but are no voter (removed or demoted): pass leadership to the voter with
        the most of our log. Until then we keep replicating, so the voters learn that the
        change removing us committed."""
        voters = [node for node in self.trk.voter_nodes() if node != self.id]
        if not voters:
            return
        best = max(voters, key=lambda node: (self.trk.progress[node].match, -node))
        self.step(Message(type=MessageType.TRANSFER_LEADER, sender=best))

    def send_timeout_now(self, to: int) -> None:
        self.timeout_now_sent = True
        self.send(Message(type=MessageType.TIMEOUT_NOW, to=to))
        if not self.is_voter():
            # A leader outside the config has done its last duty; nobody will depose it
            # (it gets no messages), so it steps down by itself.
            self.become_follower(self.term, NONE)

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    # -- candidate ----------------------------------------------------------------------------

    def step_candidate(self, m: Message) -> None:
        own_response = (
            MessageType.PRE_VOTE_RESPONSE
            if self.state is StateType.PRE_CANDIDATE
            else MessageType.VOTE_RESPONSE
        )
        if m.type is MessageType.PROPOSE:
            raise ProposalDroppedError("no leader: an election is in progress")
        if m.type is MessageType.APPEND:
            self.become_follower(m.term, m.sender)
            self._handle_append(m)
        elif m.type is MessageType.HEARTBEAT:
            self.become_follower(m.term, m.sender)
            self._handle_heartbeat(m)
        elif m.type is MessageType.SNAPSHOT:
            self.become_follower(m.term, m.sender)
            self._handle_snapshot(m)
        elif m.type is own_response:
            _, _, result = self.poll(m.sender, not m.reject)
            if result is VoteResult.WON:
                if self.state is StateType.PRE_CANDIDATE:
                    self.campaign(CampaignType.ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif result is VoteResult.LOST:
                # Back to follower in the same term: we may vote for someone else now.
                self.become_follower(self.term, NONE)
        # A candidate ignores TIMEOUT_NOW and everything else.

    # -- follower -----------------------------------------------------------------------------

    def step_follower(self, m: Message) -> None:
        if m.type is MessageType.PROPOSE:
            if self.lead == NONE:
                raise ProposalDroppedError("no leader known")
            if self.disable_proposal_forwarding:
                raise ProposalDroppedError("proposal forwarding is disabled")
            self.send(replace(m, to=self.lead))
        elif m.type is MessageType.APPEND:
            self.election_elapsed = 0
            self.lead = m.sender
            self._handle_append(m)
        elif m.type is MessageType.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.sender
            self._handle_heartbeat(m)
        elif m.type is MessageType.SNAPSHOT:
            self.election_elapsed = 0
            self.lead = m.sender
            self._handle_snapshot(m)
        elif m.type is MessageType.TRANSFER_LEADER:
            if self.lead != NONE:
                self.send(replace(m, to=self.lead))
        elif m.type is MessageType.TIMEOUT_NOW:
            # The leader chose us: campaign at once, skipping pre-vote and voters' leases.
            self.hup(CampaignType.TRANSFER)
        elif m.type is MessageType.READ_INDEX:
            if self.lead != NONE:
                self.send(replace(m, to=self.lead))
        elif m.type is MessageType.READ_INDEX_RESPONSE:
            if len(m.entries) != 1:
                return
            self.read_states.append(ReadState(index=m.index, request_ctx=m.entries[0].data))
        elif m.type is MessageType.UNREACHABLE:
            self._leader_unreachable(m.sender)

    def _leader_unreachable(self, node: int) -> None:
        """The transport lost its stream to our leader: its process may be gone.

        Rather than wait out a whole election timeout, campaign after a tick or a few (a
        fifth of a timeout at most): the followers that heard the same news campaign at
        about the same moment, which `_rival_pre_candidate` settles without a split vote.

        This changes only when an election starts, never what it decides, and a false
        alarm at one follower is harmless: the pre-vote fails while any other voter still
        hears from a live leader (it is in lease and refuses), so no term moves. A false
        alarm at every follower at once is not: they grant each other's pre-votes and elect
        a new leader. One event that ends all their streams (a GOAWAY from the leader's
        server) would raise it so, which is why the transport reports a peer only when a
        new connection to it fails, never merely because a stream ended.
        That argument needs pre-vote and check-quorum; and with lease-based reads a
        follower must keep refusing votes for the whole timeout after hearing from the
        leader, whatever its transport says, or the leader's lease would be a lie. In
        those cases the hint is ignored. Repeated hints (a reconnect loop) count once.
        """
        if (
            node == NONE
            or node != self.lead
            or not (self.pre_vote and self.check_quorum)
            or self.read_only.option is ReadOnlyOption.LEASE_BASED
            or not self.promotable()
            or self.election_elapsed >= self.election_timeout
        ):
            return
        self.election_elapsed = self.election_timeout
        self.randomized_election_timeout = (
            self.election_timeout + 1 + self.rng.randrange(max(1, self.election_timeout // 5))
        )

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self.send(
                Message(
                    type=MessageType.APPEND_RESPONSE,
                    to=m.sender,
                    index=self.log.committed,
                    lease_tick=m.lease_tick,
                )
            )
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self.send(
                Message(
                    type=MessageType.APPEND_RESPONSE,
                    to=m.sender,
                    index=last_new,
                    lease_tick=m.lease_tick,
                )
            )
            return
        # Our log does not match at m.index: hint where it might, to skip a whole term.
        hint_index = self.log.find_conflict_by_term(min(m.index, self.log.last_index()), m.log_term)
        self.send(
            Message(
                type=MessageType.APPEND_RESPONSE,
                to=m.sender,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=self.log.term_or_zero(hint_index),
                lease_tick=m.lease_tick,
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self.send(
            Message(
                type=MessageType.HEARTBEAT_RESPONSE,
                to=m.sender,
                context=m.context,
                lease_tick=m.lease_tick,
            )
        )

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        index = self.log.last_index() if self.restore(m.snapshot) else self.log.committed
        self.send(Message(type=MessageType.APPEND_RESPONSE, to=m.sender, index=index))

    def restore(self, snapshot: Snapshot) -> bool:
        """Install `snapshot` if it is news to us; False when it is not needed."""
        metadata = snapshot.metadata
        if metadata.index <= self.log.committed:
            return False
        if self.state is not StateType.FOLLOWER:
            # Only a leader of our term sends snapshots; being anything else here is odd.
            self.become_follower(self.term + 1, NONE)
            return False
        # A snapshot whose config does not name us is still installed: only a leader whose
        # (possibly uncommitted) config includes us sends one, and a node joins after the
        # leader's newest snapshot was taken. We stay unpromotable until we apply our own
        # addition from the log that follows the snapshot.
        if self.log.match_term(metadata.index, metadata.term):
            # We already have the entries: fast-forward the commit index instead.
            self.log.commit_to(metadata.index)
            return False
        self.log.restore(snapshot)
        tracker_config, progress = confchange.restore(
            metadata.conf_state,
            self.log.last_index(),
            self.trk.max_inflight_msgs,
            self.trk.max_inflight_bytes,
        )
        self.switch_to_config(tracker_config, progress)
        return True

    # -- membership ---------------------------------------------------------------------------

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        changer = confchange.Changer(self.trk, self.log.last_index())
        if change.leave_joint():
            tracker_config, progress = changer.leave_joint()
        else:
            joint, auto_leave = change.enter_joint()
            if joint:
                tracker_config, progress = changer.enter_joint(auto_leave, change.changes)
            else:
                tracker_config, progress = changer.simple(change.changes)
        self.previous_voters = self.trk.config.voters.ids()
        return self.switch_to_config(tracker_config, progress)

    def switch_to_config(self, config: TrackerConfig, progress: dict[int, Progress]) -> ConfState:
        self.trk.config = config
        self.trk.progress = progress
        conf_state = self.trk.conf_state()
        pr = progress.get(self.id)
        self.is_learner = pr is not None and pr.is_learner
        # A leader removed or demoted here keeps leading until it hands leadership over
        # (see _hand_over_leadership): stepping down at once could strand the voters.
        if self.state is not StateType.LEADER or not conf_state.voters:
            return conf_state
        # The quorum may have shrunk: something may be committed now.
        if self.maybe_commit():
            self.bcast_append()
        else:
            for node in sorted(self.trk.progress):
                if node != self.id:
                    self.maybe_send_append(node, send_if_empty=False)
        if self.lead_transferee != NONE and self.lead_transferee not in config.voters.ids():
            self.abort_leader_transfer()
        return conf_state

    # -- after the application persisted a Ready ----------------------------------------------

    def advance(self, applied_index: int, committed_payload_bytes: int) -> None:
        if applied_index:
            self.log.applied_to(applied_index)
            if self.state is StateType.LEADER:
                self.uncommitted_bytes = max(0, self.uncommitted_bytes - committed_payload_bytes)
            if (
                self.trk.config.auto_leave
                and applied_index >= self.pending_conf_index
                and self.state is StateType.LEADER
            ):
                # The joint config is in effect: propose leaving it.
                leave = Entry(type=EntryType.CONF_CHANGE, data=ConfChange().encode())
                appended = self.append_entry([leave])
                assert appended, "leaving a joint config must always be accepted"
                self.pending_conf_index = self.log.last_index()
                self.broadcast_pending = True


__all__ = [
    "CampaignType",
    "CompactedError",
    "ConfChangeError",
    "Config",
    "Raft",
    "UnavailableError",
]
