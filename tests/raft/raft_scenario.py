"""An interpreter for Raft scenario scripts, in the style of etcd raft's datadriven testdata.

A script (tests/raft/scenarios/*.txt) is a sequence of blocks:

    # comments and blank lines, kept as they are
    command arg key=value key=(1,2,3)
    ----
    the transcript the command is expected to produce

The interpreter drives real `RawNode`s over `MemoryStorage` through the persistence contract
of rawnode.py and prints one compact, deterministic line per message, entry and state change,
so that a script reads like the protocol it exercises. It owns the fake network (a FIFO list
of messages in flight, with isolation), the fake disks (what was persisted survives a crash)
and a toy state machine (the list of applied payloads). It must never read a clock or draw
randomness other than from the per-node seeded RNGs it injects.

Commands (arguments in brackets are optional):

    add-nodes N [voters=(..)] [learners=(..)] [index=I] [pre_vote=B] [check_quorum=B]
              [read_only=safe|lease] [max_append_bytes=N] [max_inflight_msgs=N]
              [lease_margin=N] [election_ticks=N] [heartbeat_ticks=N] [seed=N]
        N new nodes. With voters, each boots from a snapshot at `index` (term 1) holding that
        configuration; without, a node starts empty and waits to be sent a snapshot.
    campaign ID                      ID starts an election (pre-vote first if enabled)
    elect ID                         campaign ID and stabilize quietly; prints every state
    tick ID|all [times=N] [stabilize]
        advance logical time; with stabilize, the network runs quietly after every round
    tick-until-campaign [ID...]      tick the nodes (all live ones) until one campaigns
    election-timeouts                each follower's elapsed ticks and randomised timeout
    propose ID DATA                  propose one entry
    propose-batch ID DATA...         propose several entries in one call
    propose-conf-change ID [vN] [lN] [rN]... [transition=auto|implicit|explicit]
        add voter N, add learner N, remove N; no change at all means "leave joint"
    read-index ID CTX                ask for a linearizable read
    report-unreachable ID PEER       ID's transport lost its stream to PEER
    transfer-leader from=ID to=ID    ask ID (the leader, or a follower that forwards) to
                                     hand leadership to another node
    process-ready ID...              persist, send, apply and advance one Ready each
    deliver-msgs [ID...] [from=ID] [type=T] [count=N] [drop]
        deliver (or drop) the messages in flight to ID (all nodes if none), in send order
    stabilize [ID...] [quiet]        process Readys and deliver messages until nothing is left;
                                     quiet prints only state changes, not the traffic
    status ID                        the node's state and, on a leader, its progress view
    raft-state                       one line per node
    raft-log ID                      the node's log
    compact ID INDEX                 snapshot the state machine at INDEX, drop the log to it
    isolate ID / heal                cut every link of ID / restore all links
    crash ID / restart ID            lose all volatile state / rebuild from the storage
    crash-before-persist ID          call ready(), then crash before persisting any of it
    crash-mid-persist ID             call ready(), persist its snapshot and entries, then crash
                                     before persisting its hard state (a torn step 1)
"""

from __future__ import annotations

import difflib
import json
import random
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from raft import (
    NONE,
    ConfChange,
    ConfChangeError,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    Config,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    ReadOnlyOption,
    Ready,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from raft.types import CAMPAIGN_TRANSFER

MAX_STABILIZE_ROUNDS = 200
"""A scenario that does not settle within this many rounds is a livelock: fail loudly."""
MAX_TICKS_UNTIL_CAMPAIGN = 200
BOOT_TERM = 1
"""The term of the bootstrap snapshot that add-nodes hands each voter (etcd's convention)."""


class ScenarioError(Exception):
    """The script itself is wrong: an unknown command, a missing argument, a dead node."""


# -- the script format ------------------------------------------------------------------------


@dataclass(slots=True)
class Block:
    preamble: list[str]
    """Comments and blank lines before the command, kept verbatim."""
    command: str
    expected: str
    line: int
    """1-based line number of the command in the script."""


@dataclass(slots=True)
class Script:
    blocks: list[Block]
    trailer: list[str]


def parse_script(text: str) -> Script:
    lines = text.split("\n")
    blocks: list[Block] = []
    preamble: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        if not line.strip() or line.startswith("#"):
            preamble.append(line)
            position += 1
            continue
        command_line = position + 1
        position += 1
        if position >= len(lines) or lines[position] != "----":
            raise ScenarioError(f"line {command_line}: expected '----' after {line!r}")
        position += 1
        output: list[str] = []
        while position < len(lines) and lines[position].strip():
            output.append(lines[position])
            position += 1
        position += 1  # the blank line that ends the block
        blocks.append(Block(preamble, line, "\n".join(output), command_line))
        preamble = []
    return Script(blocks, preamble)


def render_script(script: Script, outputs: list[str]) -> str:
    lines: list[str] = []
    for block, output in zip(script.blocks, outputs, strict=True):
        lines.extend(block.preamble)
        lines.append(block.command)
        lines.append("----")
        lines.extend(output.split("\n"))
        lines.append("")
    lines.extend(script.trailer)
    return "\n".join(lines).rstrip("\n") + "\n"


def run_script(path: Path) -> tuple[str, str]:
    """Run the script at `path`; return its text as written and as this run transcribes it."""
    original = path.read_text()
    script = parse_script(original)
    env = ScenarioEnv()
    outputs: list[str] = []
    for block in script.blocks:
        try:
            outputs.append(env.run(block.command))
        except ScenarioError as error:
            raise ScenarioError(f"{path.name}:{block.line}: {error}") from error
    return original, render_script(script, outputs)


def transcript_diff(path: Path, expected: str, actual: str) -> str:
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{path.name} (script)",
            tofile=f"{path.name} (this run)",
        )
    )


# -- formatting -------------------------------------------------------------------------------


def ids(values: tuple[int, ...] | list[int] | frozenset[int]) -> str:
    return "(" + " ".join(str(value) for value in sorted(values)) + ")"


def describe_conf_state(conf: ConfState) -> str:
    text = f"voters={ids(conf.voters)}"
    if conf.voters_outgoing:
        text += f"&&{ids(conf.voters_outgoing)}"
    if conf.learners:
        text += f" learners={ids(conf.learners)}"
    if conf.learners_next:
        text += f" learners_next={ids(conf.learners_next)}"
    if conf.auto_leave:
        text += " autoleave"
    return text


_CHANGE_LETTER = {
    ConfChangeType.ADD_VOTER: "v",
    ConfChangeType.ADD_LEARNER: "l",
    ConfChangeType.REMOVE_NODE: "r",
}
_TRANSITIONS = {
    "auto": ConfChangeTransition.AUTO,
    "implicit": ConfChangeTransition.JOINT_IMPLICIT,
    "explicit": ConfChangeTransition.JOINT_EXPLICIT,
}


def describe_conf_change(change: ConfChange) -> str:
    if change.leave_joint():
        return "leave-joint"
    parts = [f"{_CHANGE_LETTER[single.type]}{single.node_id}" for single in change.changes]
    if change.transition is not ConfChangeTransition.AUTO:
        name = next(key for key, value in _TRANSITIONS.items() if value is change.transition)
        parts.append(f"transition={name}")
    return " ".join(parts)


def describe_entry(entry: Entry) -> str:
    head = f"{entry.term}/{entry.index}"
    if entry.type is EntryType.CONF_CHANGE:
        return f"{head} EntryConfChange {describe_conf_change(ConfChange.decode(entry.data))}"
    return f"{head} EntryNormal {json.dumps(entry.data.decode('utf-8', 'backslashreplace'))}"


def describe_entries(entries: tuple[Entry, ...] | list[Entry]) -> str:
    return "[" + ", ".join(describe_entry(entry) for entry in entries) + "]"


def describe_snapshot(snapshot: Snapshot) -> str:
    metadata = snapshot.metadata
    return f"index={metadata.index} term={metadata.term} {describe_conf_state(metadata.conf_state)}"


def describe_message(m: Message) -> str:
    parts = [f"{m.sender}->{m.to} {m.type.name} term={m.term}"]
    kind = m.type
    if kind in (MessageType.VOTE, MessageType.PRE_VOTE):
        parts += [f"index={m.index}", f"log_term={m.log_term}"]
        if m.context == CAMPAIGN_TRANSFER:
            parts.append("(transfer)")
    elif kind in (MessageType.VOTE_RESPONSE, MessageType.PRE_VOTE_RESPONSE):
        parts.append("rejected" if m.reject else "granted")
    elif kind is MessageType.APPEND:
        parts += [f"log_term={m.log_term}", f"index={m.index}", f"commit={m.commit}"]
        if m.entries:
            parts.append(f"entries={describe_entries(m.entries)}")
    elif kind is MessageType.APPEND_RESPONSE:
        parts.append(f"index={m.index}")
        if m.reject:
            parts.append(f"rejected hint={m.reject_hint} hint_term={m.log_term}")
    elif kind is MessageType.HEARTBEAT:
        parts.append(f"commit={m.commit}")
        if m.context:
            parts.append(f"ctx={m.context.decode()!r}")
    elif kind is MessageType.HEARTBEAT_RESPONSE:
        if m.context:
            parts.append(f"ctx={m.context.decode()!r}")
    elif kind is MessageType.SNAPSHOT:
        assert m.snapshot is not None
        parts.append(f"snapshot=[{describe_snapshot(m.snapshot)}]")
    elif kind is MessageType.READ_INDEX:
        parts.append(f"ctx={m.entries[0].data.decode()!r}")
    elif kind is MessageType.READ_INDEX_RESPONSE:
        parts += [f"index={m.index}", f"ctx={m.entries[0].data.decode()!r}"]
    elif kind is MessageType.PROPOSE:
        parts.append(f"entries={describe_entries(m.entries)}")
    return " ".join(parts)


def describe_hard_state(state: HardState) -> str:
    return f"HardState term={state.term} vote={state.vote} commit={state.commit}"


# -- nodes ------------------------------------------------------------------------------------


@dataclass(slots=True)
class NodeOptions:
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    read_only: ReadOnlyOption = ReadOnlyOption.SAFE
    max_append_bytes: int = 1 << 20
    max_inflight_msgs: int = 256
    lease_margin: int = 1
    seed: int = 0


@dataclass(slots=True)
class StateMachine:
    """What the application applied: payloads of normal entries, and the configuration."""

    applied: int = 0
    payloads: list[tuple[int, str]] = field(default_factory=list)
    conf_state: ConfState = field(default_factory=ConfState)
    conf_history: list[tuple[int, ConfState]] = field(default_factory=list)

    def encode(self, up_to: int) -> bytes:
        return json.dumps(
            [[index, data] for index, data in self.payloads if index <= up_to]
        ).encode()

    @staticmethod
    def restore(snapshot: Snapshot) -> StateMachine:
        payloads = [(int(index), str(data)) for index, data in json.loads(snapshot.data or b"[]")]
        metadata = snapshot.metadata
        return StateMachine(
            applied=metadata.index,
            payloads=payloads,
            conf_state=metadata.conf_state,
            conf_history=[(metadata.index, metadata.conf_state)],
        )

    def conf_state_at(self, index: int) -> ConfState:
        found = ConfState()
        for applied_at, conf_state in self.conf_history:
            if applied_at <= index:
                found = conf_state
        return found


@dataclass(slots=True)
class Node:
    id: int
    storage: MemoryStorage
    options: NodeOptions
    raw: RawNode | None = None
    incarnation: int = 0
    state_machine: StateMachine = field(default_factory=StateMachine)

    def live(self) -> RawNode:
        if self.raw is None:
            raise ScenarioError(f"node {self.id} is down")
        return self.raw


Observation = tuple[StateType, int, int, int]
"""(role, term, vote, leader) of one node: what a state-change line reports."""


def observe(raw: RawNode) -> Observation:
    raft = raw.raft
    return raft.state, raft.term, raft.vote, raft.lead


def describe_change(node_id: int, before: Observation | None, after: Observation) -> list[str]:
    state, term, vote, lead = after
    lines: list[str] = []
    leader_note = f" (leader {lead})" if lead not in (NONE, node_id) else ""
    if before is None or before[0] is not state or before[1] != term:
        lines.append(f"{node_id} became {state.value} at term {term}{leader_note}")
    elif before[3] != lead:
        if lead == NONE:
            lines.append(f"{node_id} lost its leader at term {term}")
        else:
            lines.append(f"{node_id} follows leader {lead} at term {term}")
    if vote != NONE and (before is None or before[1] != term or before[2] != vote):
        lines.append(f"{node_id} voted for {vote} at term {term}")
    return lines


def _addressed_to(node_id: int) -> Callable[[Message], bool]:
    return lambda message: message.to == node_id


def _vote_requests(node: Node) -> int:
    """Vote requests the node has produced and not yet handed out in a Ready."""
    kinds = (MessageType.PRE_VOTE, MessageType.VOTE)
    return sum(1 for message in node.live().raft.msgs if message.type in kinds)


def _campaigned(node: Node, requests_before: int, seen_before: Observation) -> bool:
    state = node.live().raft.state
    if _vote_requests(node) > requests_before:
        return True
    # A single voter wins at once, without asking anyone.
    return state is not seen_before[0] and state is not StateType.FOLLOWER


# -- the environment --------------------------------------------------------------------------


def _bool(text: str) -> bool:
    if text in ("true", "on", "yes"):
        return True
    if text in ("false", "off", "no"):
        return False
    raise ScenarioError(f"not a boolean: {text!r}")


def _int_list(text: str) -> list[int]:
    inner = text.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    return [int(part) for part in inner.replace(",", " ").split()]


@dataclass(slots=True)
class Args:
    positional: list[str]
    keyed: dict[str, str]

    def node_ids(self) -> list[int]:
        return [int(token) for token in self.positional if token.isdigit()]

    def flag(self, name: str) -> bool:
        return name in self.positional

    def integer(self, key: str, default: int) -> int:
        return int(self.keyed[key]) if key in self.keyed else default


def parse_args(tokens: list[str]) -> Args:
    positional: list[str] = []
    keyed: dict[str, str] = {}
    for token in tokens:
        key, equals, value = token.partition("=")
        if equals:
            keyed[key] = value
        else:
            positional.append(token)
    return Args(positional, keyed)


class ScenarioEnv:
    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.network: list[Message] = []
        self.isolated: set[int] = set()
        # Safety checks that hold across every script: one leader per term, and no two nodes
        # apply different entries at one index.
        self.leader_of_term: dict[int, int] = {}
        self.applied_at: dict[int, tuple[int, bytes]] = {}
        self.out: list[str] = []
        self.quiet = False
        self._last_seen: dict[int, Observation] = {}
        self.commands: dict[str, Callable[[Args], None]] = {
            "add-nodes": self.cmd_add_nodes,
            "campaign": self.cmd_campaign,
            "elect": self.cmd_elect,
            "tick": self.cmd_tick,
            "tick-until-campaign": self.cmd_tick_until_campaign,
            "election-timeouts": self.cmd_election_timeouts,
            "propose": self.cmd_propose,
            "propose-batch": self.cmd_propose_batch,
            "propose-conf-change": self.cmd_propose_conf_change,
            "read-index": self.cmd_read_index,
            "report-unreachable": self.cmd_report_unreachable,
            "transfer-leader": self.cmd_transfer_leader,
            "process-ready": self.cmd_process_ready,
            "deliver-msgs": self.cmd_deliver_msgs,
            "stabilize": self.cmd_stabilize,
            "status": self.cmd_status,
            "raft-state": self.cmd_raft_state,
            "raft-log": self.cmd_raft_log,
            "compact": self.cmd_compact,
            "isolate": self.cmd_isolate,
            "heal": self.cmd_heal,
            "crash": self.cmd_crash,
            "restart": self.cmd_restart,
            "crash-before-persist": self.cmd_crash_before_persist,
            "crash-mid-persist": self.cmd_crash_mid_persist,
        }

    # -- running a command ----------------------------------------------------------------

    def run(self, command_line: str) -> str:
        tokens = shlex.split(command_line)
        if not tokens:
            raise ScenarioError("empty command")
        handler = self.commands.get(tokens[0])
        if handler is None:
            raise ScenarioError(f"unknown command {tokens[0]!r}")
        self.out = []
        self.quiet = False
        handler(parse_args(tokens[1:]))
        return "\n".join(self.out) if self.out else "ok"

    def emit(self, line: str) -> None:
        """A line of traffic (Readys, messages): left out in quiet mode."""
        if not self.quiet:
            self.out.append(line)

    def event(self, line: str) -> None:
        """A state change or an applied conf change: printed even in quiet mode."""
        self.out.append(line.lstrip() if self.quiet else line)

    def node(self, node_id: int) -> Node:
        node = self.nodes.get(node_id)
        if node is None:
            raise ScenarioError(f"no node {node_id}")
        return node

    def live_nodes(self) -> list[Node]:
        return [node for _, node in sorted(self.nodes.items()) if node.raw is not None]

    def report_changes(self, indent: str, prefix: str = "") -> None:
        """Print what changed in each node's role, term, vote or leader since last reported."""
        for node in self.live_nodes():
            assert node.raw is not None
            after = observe(node.raw)
            before = self._last_seen.get(node.id)
            if before == after:
                continue
            self._last_seen[node.id] = after
            for line in describe_change(node.id, before, after):
                self.event(f"{indent}{prefix}{line}")
            self._check_one_leader_per_term(node.id, after)

    def _check_one_leader_per_term(self, node_id: int, seen: Observation) -> None:
        state, term, _, _ = seen
        if state is StateType.LEADER:
            other = self.leader_of_term.setdefault(term, node_id)
            assert other == node_id, f"two leaders in term {term}: {other} and {node_id}"

    # -- nodes ----------------------------------------------------------------------------

    def _config(self, node: Node, applied: int) -> Config:
        options = node.options
        return Config(
            id=node.id,
            storage=node.storage,
            rng=random.Random(f"{options.seed}/{node.id}/{node.incarnation}"),
            election_ticks=options.election_ticks,
            heartbeat_ticks=options.heartbeat_ticks,
            applied=applied,
            max_append_bytes=options.max_append_bytes,
            max_inflight_msgs=options.max_inflight_msgs,
            check_quorum=options.check_quorum,
            pre_vote=options.pre_vote,
            read_only_option=options.read_only,
            lease_margin_ticks=options.lease_margin,
        )

    def _start(self, node: Node) -> None:
        node.incarnation += 1
        node.state_machine = StateMachine.restore(node.storage.snapshot())
        node.raw = RawNode(self._config(node, node.state_machine.applied))
        self._last_seen[node.id] = observe(node.raw)
        self.emit(self.describe_node(node))

    def describe_node(self, node: Node) -> str:
        if node.raw is None:
            return f"{node.id}: down"
        raft = node.raw.raft
        log = raft.log
        text = (
            f"{node.id}: {raft.state.value} term={raft.term} vote={raft.vote} lead={raft.lead}"
            f" commit={log.committed} applied={log.applied}"
            f" last={log.last_term()}/{log.last_index()}"
            f" {describe_conf_state(raft.trk.conf_state())}"
        )
        if node.id in self.isolated:
            text += " (isolated)"
        return text

    def cmd_add_nodes(self, args: Args) -> None:
        if not args.positional:
            raise ScenarioError("add-nodes needs a count")
        count = int(args.positional[0])
        known = {"voters", "learners", "index", "pre_vote", "check_quorum", "read_only"}
        known |= {"max_append_bytes", "max_inflight_msgs", "lease_margin", "seed"}
        known |= {"election_ticks", "heartbeat_ticks"}
        unknown = set(args.keyed) - known
        if unknown:
            raise ScenarioError(f"add-nodes: unknown options {sorted(unknown)}")
        options = NodeOptions(
            election_ticks=args.integer("election_ticks", 10),
            heartbeat_ticks=args.integer("heartbeat_ticks", 1),
            pre_vote=_bool(args.keyed.get("pre_vote", "true")),
            check_quorum=_bool(args.keyed.get("check_quorum", "true")),
            read_only=ReadOnlyOption.LEASE_BASED
            if args.keyed.get("read_only", "safe") == "lease"
            else ReadOnlyOption.SAFE,
            max_append_bytes=args.integer("max_append_bytes", 1 << 20),
            max_inflight_msgs=args.integer("max_inflight_msgs", 256),
            lease_margin=args.integer("lease_margin", 1),
            seed=args.integer("seed", 0),
        )
        voters = _int_list(args.keyed.get("voters", "()"))
        learners = _int_list(args.keyed.get("learners", "()"))
        index = args.integer("index", 2)
        first_id = max(self.nodes, default=0) + 1
        for node_id in range(first_id, first_id + count):
            storage = MemoryStorage()
            if voters:
                conf_state = ConfState(voters=tuple(voters), learners=tuple(learners))
                storage.apply_snapshot(
                    Snapshot(
                        data=b"[]",
                        metadata=SnapshotMetadata(
                            conf_state=conf_state, index=index, term=BOOT_TERM
                        ),
                    )
                )
            node = Node(node_id, storage, options)
            self.nodes[node_id] = node
            self._start(node)

    def cmd_crash(self, args: Args) -> None:
        for node_id in args.node_ids():
            node = self.node(node_id)
            node.live()
            node.raw = None
            self._last_seen.pop(node_id, None)
            self.emit(f"{node_id} crashed: volatile state lost, storage kept")

    def cmd_restart(self, args: Args) -> None:
        for node_id in args.node_ids():
            node = self.node(node_id)
            if node.raw is not None:
                raise ScenarioError(f"node {node_id} is up")
            self._start(node)

    def cmd_isolate(self, args: Args) -> None:
        for node_id in args.node_ids():
            self.node(node_id)
            self.isolated.add(node_id)

    def cmd_heal(self, args: Args) -> None:
        del args
        self.isolated.clear()

    # -- inputs ---------------------------------------------------------------------------

    def _attempt(self, action: Callable[[], None]) -> None:
        try:
            action()
        except ProposalDroppedError as error:
            self.event(f"error: proposal dropped: {error}")
        self.report_changes("")

    def cmd_campaign(self, args: Args) -> None:
        for node_id in args.node_ids():
            self._attempt(self.node(node_id).live().campaign)

    def cmd_elect(self, args: Args) -> None:
        (node_id,) = args.node_ids()
        raw = self.node(node_id).live()
        self.quiet = True
        raw.campaign()
        self.report_changes("")
        self._stabilize(sorted(self.nodes))
        self.quiet = False
        if raw.raft.state is not StateType.LEADER:
            raise ScenarioError(f"elect: {node_id} did not win ({raw.raft!r})")
        self.cmd_raft_state(args)

    def _tick_round(
        self, targets: list[Node], round_number: int, show_round: bool, deliver: bool = False
    ) -> None:
        for node in targets:
            node.live().tick()
        prefix = f"tick {round_number}: " if show_round else ""
        self.report_changes("", prefix)
        if deliver:
            # The network runs between ticks; only state changes are worth a line.
            quiet, self.quiet = self.quiet, True
            start = len(self.out)
            self._stabilize(sorted(self.nodes))
            self.out[start:] = [prefix + line for line in self.out[start:]]
            self.quiet = quiet

    def cmd_tick(self, args: Args) -> None:
        times = args.integer("times", 1)
        if args.flag("all"):
            targets = self.live_nodes()
        else:
            targets = [self.node(node_id) for node_id in args.node_ids()]
        if not targets:
            raise ScenarioError("tick whom?")
        deliver = args.flag("stabilize")
        for round_number in range(1, times + 1):
            self._tick_round(targets, round_number, show_round=times > 1, deliver=deliver)

    def cmd_tick_until_campaign(self, args: Args) -> None:
        chosen = args.node_ids()
        targets = [self.node(node_id) for node_id in chosen] if chosen else self.live_nodes()
        for round_number in range(1, MAX_TICKS_UNTIL_CAMPAIGN + 1):
            before = {node.id: (_vote_requests(node), observe(node.live())) for node in targets}
            self._tick_round(targets, round_number, show_round=True)
            campaigners = [node for node in targets if _campaigned(node, *before[node.id])]
            for node in campaigners:
                if observe(node.live()) == before[node.id][1]:
                    # A pre-candidate that times out asks again; its role and term stay.
                    raft = node.live().raft
                    self.event(
                        f"tick {round_number}: {node.id} campaigns again as {raft.state.value}"
                        f" at term {raft.term}"
                    )
            if campaigners:
                return
        raise ScenarioError(f"nobody campaigned within {MAX_TICKS_UNTIL_CAMPAIGN} ticks")

    def cmd_election_timeouts(self, args: Args) -> None:
        del args
        for node in self.live_nodes():
            raft = node.live().raft
            self.emit(
                f"{node.id}: {raft.state.value} elapsed={raft.election_elapsed}"
                f" randomized_timeout={raft.randomized_election_timeout}"
                f" (election_ticks={raft.election_timeout})"
            )

    def cmd_propose(self, args: Args) -> None:
        node_id, data = args.positional
        raw = self.node(int(node_id)).live()
        self._attempt(lambda: raw.propose(data.encode()))

    def cmd_propose_batch(self, args: Args) -> None:
        node_id, *payloads = args.positional
        raw = self.node(int(node_id)).live()
        self._attempt(lambda: raw.propose_batch([data.encode() for data in payloads]))

    def cmd_propose_conf_change(self, args: Args) -> None:
        node_id, *tokens = args.positional
        kinds = {letter: kind for kind, letter in _CHANGE_LETTER.items()}
        changes: list[ConfChangeSingle] = []
        for token in tokens:
            if token[:1] not in kinds or not token[1:].isdigit():
                raise ScenarioError(f"not a change: {token!r} (use vN, lN or rN)")
            changes.append(ConfChangeSingle(kinds[token[0]], int(token[1:])))
        transition = _TRANSITIONS[args.keyed.get("transition", "auto")]
        change = ConfChange(tuple(changes), transition)
        raw = self.node(int(node_id)).live()
        self._attempt(lambda: raw.propose_conf_change(change))

    def cmd_read_index(self, args: Args) -> None:
        node_id, ctx = args.positional
        raw = self.node(int(node_id)).live()
        self._attempt(lambda: raw.read_index(ctx.encode()))

    def cmd_report_unreachable(self, args: Args) -> None:
        node_id, peer = args.positional
        raw = self.node(int(node_id)).live()
        self._attempt(lambda: raw.report_unreachable(int(peer)))

    def cmd_transfer_leader(self, args: Args) -> None:
        raw = self.node(int(args.keyed["from"])).live()
        transferee = int(args.keyed["to"])
        self._attempt(lambda: raw.transfer_leader(transferee))

    # -- the Ready loop: the persistence contract -------------------------------------------

    def describe_ready(self, ready: Ready) -> None:
        if ready.soft_state is not None:
            soft = ready.soft_state
            self.emit(f"  SoftState state={soft.state.value} lead={soft.lead}")
        if ready.hard_state is not None:
            self.emit(f"  {describe_hard_state(ready.hard_state)}")
        if ready.snapshot is not None:
            self.emit(f"  Snapshot {describe_snapshot(ready.snapshot)}")
        if ready.entries:
            self.emit("  Entries:")
            for entry in ready.entries:
                self.emit(f"  {describe_entry(entry)}")
        if ready.committed_entries:
            self.emit("  CommittedEntries:")
            for entry in ready.committed_entries:
                self.emit(f"  {describe_entry(entry)}")
        if ready.messages:
            self.emit("  Messages:")
            for message in ready.messages:
                self.emit(f"  {describe_message(message)}")
        if ready.read_states:
            self.emit("  ReadStates:")
            for read_state in ready.read_states:
                self.emit(f"  index={read_state.index} ctx={read_state.request_ctx.decode()!r}")

    def process_ready(self, node: Node) -> None:
        raw = node.live()
        ready = raw.ready()
        self.emit(f"> {node.id} handling Ready{' (must sync)' if ready.must_sync else ''}")
        self.describe_ready(ready)
        storage = node.storage
        # 1. persist
        if ready.snapshot is not None:
            storage.apply_snapshot(ready.snapshot)
        storage.append(ready.entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
        # 2. send
        self.network.extend(ready.messages)
        # 3. apply
        if ready.snapshot is not None:
            node.state_machine = StateMachine.restore(ready.snapshot)
            self._check_applied(node, ready.snapshot.metadata.index, None)
        for entry in ready.committed_entries:
            self.apply(node, raw, entry)
        # 4. advance
        raw.advance(ready)
        self.report_changes("  ")

    def apply(self, node: Node, raw: RawNode, entry: Entry) -> None:
        machine = node.state_machine
        assert entry.index == machine.applied + 1, (
            f"{node.id} applies {entry.index} after {machine.applied}"
        )
        self._check_applied(node, entry.index, entry)
        machine.applied = entry.index
        if entry.type is EntryType.CONF_CHANGE:
            change = ConfChange.decode(entry.data)
            try:
                conf_state = raw.apply_conf_change(change)
            except ConfChangeError as error:
                self.event(
                    f"  {node.id} refused conf change {describe_conf_change(change)}: {error}"
                )
                return
            machine.conf_state = conf_state
            machine.conf_history.append((entry.index, conf_state))
            self.event(
                f"  {node.id} applied conf change {describe_conf_change(change)}:"
                f" {describe_conf_state(conf_state)}"
            )
        elif entry.data:
            machine.payloads.append((entry.index, entry.data.decode()))

    def _check_applied(self, node: Node, index: int, entry: Entry | None) -> None:
        if entry is None:
            return  # a snapshot: its entries were checked where they were applied
        seen = self.applied_at.setdefault(index, (entry.term, entry.data))
        assert seen == (entry.term, entry.data), (
            f"state machine safety: {node.id} applied {describe_entry(entry)} at {index}, "
            f"another node applied term {seen[0]} data {seen[1]!r} there"
        )

    def cmd_process_ready(self, args: Args) -> None:
        for node_id in args.node_ids():
            node = self.node(node_id)
            if not node.live().has_ready():
                self.emit(f"> {node_id} has no Ready")
                continue
            self.process_ready(node)

    def cmd_crash_before_persist(self, args: Args) -> None:
        for node_id in args.node_ids():
            node = self.node(node_id)
            ready = node.live().ready()
            self.emit(f"> {node_id} handling Ready, crashing before persisting any of it")
            self.describe_ready(ready)
            node.raw = None
            self._last_seen.pop(node_id, None)
            self.emit(f"  {node_id} crashed: nothing above was persisted, sent or applied")

    def cmd_crash_mid_persist(self, args: Args) -> None:
        (node_id,) = args.node_ids()
        node = self.node(node_id)
        ready = node.live().ready()
        self.emit(
            f"> {node_id} handling Ready, crashing after persisting its snapshot and entries,"
            " before its hard state"
        )
        self.describe_ready(ready)
        # Step 1 in the order the contract lists it, torn before its last write.
        if ready.snapshot is not None:
            node.storage.apply_snapshot(ready.snapshot)
        node.storage.append(ready.entries)
        node.raw = None
        self._last_seen.pop(node_id, None)
        self.emit(f"  {node_id} crashed: hard state not persisted, nothing sent or applied")

    # -- the network ----------------------------------------------------------------------

    def _drop_reason(self, message: Message) -> str | None:
        target = self.nodes.get(message.to)
        if target is None:
            return f"no node {message.to}"
        if target.raw is None:
            return f"{message.to} is down"
        for end in (message.sender, message.to):
            if end in self.isolated:
                return f"{end} is isolated"
        return None

    def deliver(self, messages: list[Message], drop_all: bool) -> None:
        for recipient in sorted({message.to for message in messages}):
            self.emit(f"> {recipient} receiving messages")
            for message in messages:
                if message.to == recipient:
                    self._deliver_one(message, drop_all)

    def _deliver_one(self, message: Message, drop_all: bool) -> None:
        reason = "dropped by the script" if drop_all else self._drop_reason(message)
        if reason is not None:
            self.emit(f"  {describe_message(message)} -- dropped: {reason}")
            self._report_snapshot(message, failed=True)
            return
        self.emit(f"  {describe_message(message)}")
        self.node(message.to).live().step(message)
        self.report_changes("    ")
        self._report_snapshot(message, failed=False)

    def _report_snapshot(self, message: Message, failed: bool) -> None:
        """The transport tells the sender of a snapshot how its delivery ended."""
        if message.type is not MessageType.SNAPSHOT:
            return
        sender = self.nodes.get(message.sender)
        if sender is None or sender.raw is None:
            return
        sender.raw.report_snapshot(message.to, failed=failed)
        outcome = "failed" if failed else "was delivered"
        self.emit(f"    {message.sender} learns the snapshot to {message.to} {outcome}")
        self.report_changes("    ")

    def take_messages(self, predicate: Callable[[Message], bool], limit: int) -> list[Message]:
        taken: list[Message] = []
        kept: list[Message] = []
        for message in self.network:
            if len(taken) < limit and predicate(message):
                taken.append(message)
            else:
                kept.append(message)
        self.network = kept
        return taken

    def cmd_deliver_msgs(self, args: Args) -> None:
        recipients = set(args.node_ids())
        sender = args.integer("from", NONE)
        kind = MessageType[args.keyed["type"]] if "type" in args.keyed else None

        def wanted(message: Message) -> bool:
            return (
                (not recipients or message.to in recipients)
                and (sender == NONE or message.sender == sender)
                and (kind is None or message.type is kind)
            )

        taken = self.take_messages(wanted, args.integer("count", len(self.network)))
        if not taken:
            self.emit("no messages")
            return
        self.deliver(taken, drop_all=args.flag("drop"))

    def _stabilize(self, node_ids: list[int]) -> None:
        for _ in range(MAX_STABILIZE_ROUNDS):
            progressed = False
            for node_id in node_ids:
                node = self.node(node_id)
                if node.raw is not None and node.raw.has_ready():
                    self.process_ready(node)
                    progressed = True
            for node_id in node_ids:
                taken = self.take_messages(_addressed_to(node_id), len(self.network))
                if taken:
                    self.deliver(taken, drop_all=False)
                    progressed = True
            if not progressed:
                return
        raise ScenarioError(f"no quiet state within {MAX_STABILIZE_ROUNDS} rounds")

    def cmd_stabilize(self, args: Args) -> None:
        node_ids = args.node_ids() or sorted(self.nodes)
        self.quiet = args.flag("quiet")
        self._stabilize(node_ids)

    # -- introspection --------------------------------------------------------------------

    def cmd_status(self, args: Args) -> None:
        for node_id in args.node_ids():
            node = self.node(node_id)
            self.emit(self.describe_node(node))
            if node.raw is None:
                continue
            raft = node.raw.raft
            if raft.lead_transferee != NONE:
                self.emit(f"  transferring leadership to {raft.lead_transferee}")
            if raft.state is StateType.LEADER:
                for peer, pr in sorted(raft.trk.progress.items()):
                    flags = ""
                    if pr.is_learner:
                        flags += " learner"
                    if pr.is_paused():
                        flags += " paused"
                    if pr.state.value == "snapshot":
                        flags += f" pending_snapshot={pr.pending_snapshot}"
                    self.emit(
                        f"  {peer}: {pr.state.value} match={pr.match} next={pr.next}"
                        f" inflight={pr.inflights.count()}{flags}"
                    )
                if raft.read_only.option is ReadOnlyOption.LEASE_BASED:
                    start = raft.trk.quorum_lease_tick(raft.id, raft.clock)
                    expiry = start + raft.election_timeout - raft.lease_margin_ticks
                    valid = "valid" if raft.lease_valid() else "expired"
                    self.emit(f"  lease {valid}: clock={raft.clock} expires at {expiry}")

    def cmd_raft_state(self, args: Args) -> None:
        del args
        for _, node in sorted(self.nodes.items()):
            self.emit(self.describe_node(node))

    def cmd_raft_log(self, args: Args) -> None:
        (node_id,) = args.node_ids()
        raft = self.node(node_id).live().raft
        log = raft.log
        snapshot = log.snapshot().metadata
        self.emit(
            f"first={log.first_index()} last={log.last_index()} commit={log.committed}"
            f" applied={log.applied} snapshot={snapshot.term}/{snapshot.index}"
        )
        entries = log.all_entries()
        if not entries:
            self.emit("(no entries)")
        for entry in entries:
            self.emit(describe_entry(entry))

    def cmd_compact(self, args: Args) -> None:
        node_id, index = args.node_ids()
        node = self.node(node_id)
        node.live()
        machine = node.state_machine
        if index > machine.applied:
            raise ScenarioError(f"compact {node_id}: {index} is not applied yet")
        storage = node.storage
        storage.create_snapshot(index, machine.conf_state_at(index), machine.encode(index))
        storage.compact(index)
        self.emit(
            f"{node_id}: snapshot at {storage.term(index)}/{index}, log now starts at"
            f" {storage.first_index()}"
        )
