"""The ``quiver`` command line.

Owns argument parsing and the mapping of each subcommand to the code that implements it.
Every command takes ``--dir`` (default ``.quiver``) and ``--help``; ``--format json``
exists where the output is data. An error prints exactly one line, led by a Neo4j-style
status code, to stderr, and the process exits non-zero.

Must never: pretend. A command whose implementation has not landed says so and exits with
status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from cluster.config import NoClusterError

DEFAULT_DIR = ".quiver"

# Exit statuses. 2 is also what argparse uses for a bad command line.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

INVALID_REQUEST = "Neo.ClientError.Request.Invalid"
UNKNOWN_ERROR = "Neo.DatabaseError.General.UnknownError"

BENCH_TARGETS = ("store", "cypher", "cluster", "bolt", "privileges")


class CliError(Exception):
    """A failure reported as one line, ``<status code>: <message>``."""

    def __init__(self, code: str, message: str, exit_status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_status = exit_status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one status-coded line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise CliError(INVALID_REQUEST, f"{self.prog}: {message}", EXIT_USAGE)


def _backup(args: argparse.Namespace, _extra: list[str]) -> int:
    """``quiver backup take|list|verify|prune|schedule``: see ``cluster.backup``."""
    from cluster.backup import run_backup

    return _reporting(lambda: run_backup(args))


def _restore(args: argparse.Namespace, _extra: list[str]) -> int:
    """``quiver restore BACKUP --dir NEW``: seed a new cluster from a backup."""
    from cluster.backup import run_restore

    return _reporting(lambda: run_restore(args))


def _reporting(command: Callable[[], int]) -> int:
    """Run `command`, its errors as one status-coded line."""
    from cluster.errors import QuiverError
    from store.crypto import KeyConfigurationError

    try:
        return command()
    except QuiverError as error:
        raise CliError(error.code, error.message) from None
    except KeyConfigurationError as error:
        code, _, message = str(error).partition(": ")
        raise CliError(code, message) from None
    except NoClusterError:
        raise
    except OSError as error:
        raise CliError(INVALID_REQUEST, str(error)) from None


def _chaos(args: argparse.Namespace, extra: list[str]) -> int:
    """``quiver chaos proxy ...``: the Toxiproxy-compatible fault proxy; ``quiver chaos run
    ...``: a checked workload against a fresh cluster under faults (``chaos.runner``)."""
    if args.action == "proxy":
        # Imported here: only this subcommand needs the proxy.
        from chaos.toxiproxy import main as proxy_main

        return proxy_main(extra)
    if args.action == "run":
        from chaos.runner import main as run_main

        return run_main(extra)
    raise CliError(
        INVALID_REQUEST,
        f"quiver chaos: no action {args.action!r}; the actions are 'proxy' and 'run'",
        EXIT_USAGE,
    )


STORAGE_DAMAGE = "Neo.DatabaseError.General.StorageDamageDetected"


def _audit(args: argparse.Namespace, extra: list[str]) -> int:
    """``quiver audit verify [--dir D] [FILE]``: check the hash chain of one audit log file, or
    of every audit log under the cluster directory (the one audit action: the logs rotate
    by themselves)."""
    if args.action != "verify":
        raise CliError(
            INVALID_REQUEST,
            f"quiver audit: no action {args.action!r}; 'verify' checks the audit logs "
            "(they rotate by themselves)",
            EXIT_USAGE,
        )
    # Imported here: only this subcommand needs the audit module.
    from cluster.security.audit import segments_of, verify

    if args.file is not None:
        targets = [Path(args.file)]
        if not targets[0].is_file():
            raise CliError(INVALID_REQUEST, f"quiver audit verify: no such file: {args.file}")
    else:
        root = Path(args.dir)
        folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())] if root.is_dir() else []
        targets = [folder for folder in folders if segments_of(folder)]
        if not targets:
            raise CliError(INVALID_REQUEST, f"quiver audit verify: no audit log under {root}")
    records = 0
    for target in targets:
        report = verify(target)
        if report.problem is not None:
            raise CliError(STORAGE_DAMAGE, str(report.problem))
        records += report.records
    print(f"ok: {records} records")
    return EXIT_OK


def _certs(args: argparse.Namespace, _extra: list[str]) -> int:
    """``quiver certs rotate [--new-ca] [--retire-old-ca]``: new node certificates into the
    cluster directory; running nodes present them to new connections within seconds."""
    if args.action != "rotate":
        raise CliError(INVALID_REQUEST, "quiver certs: the action is 'rotate'", EXIT_USAGE)
    from cluster.certs import CERT_POLL_S, RotationError, rotate

    try:
        rotated = rotate(Path(args.dir), new_ca=args.new_ca, retire_old_ca=args.retire_old_ca)
    except (RotationError, FileNotFoundError) as error:
        raise CliError(INVALID_REQUEST, f"quiver certs rotate: {error}") from None
    for node_id, serial in sorted(rotated.serials.items()):
        print(f"n{node_id}: new certificate serial {serial:x}")
    print(
        f"trusted CAs: {rotated.trusted_cas}; running nodes take the new certificates up "
        f"within {CERT_POLL_S:.0f} s (or at once on SIGHUP)"
    )
    return EXIT_OK


def _bench(args: argparse.Namespace, extra: list[str]) -> int:
    if args.target == "store":
        # Imported here: only this target needs the store (and RocksDB).
        from store.bench import BenchConfig, run

        run(BenchConfig(nodes=args.nodes, relationships=args.relationships))
        return EXIT_OK
    if args.target == "cypher":
        # Imported here: the engine over an encrypted RocksDB store (cypher/bench.py).
        from cypher.bench import main as cypher_bench

        return cypher_bench([])
    if args.target == "cluster":
        # Imported here: starts a real local cluster in a scratch directory.
        from cluster.bench import main as cluster_bench

        return cluster_bench()
    if args.target == "privileges":
        # Imported here: the restricted-read workload against a real local cluster (#7).
        from cluster.bench_privileges import main as privileges_bench

        return privileges_bench()
    if args.target == "bolt":
        # Imported here: the neo4j driver against a real local cluster (cluster/bolt/bench.py).
        from cluster.bolt.bench import main as bolt_bench

        return bolt_bench(extra)  # its own sizes: --persons, --knows, --lookups...
    raise CliError(
        INVALID_REQUEST,
        f"quiver bench: what to benchmark is one of {', '.join(BENCH_TARGETS)}",
        EXIT_USAGE,
    )


def _sim(_args: argparse.Namespace, extra: list[str]) -> int:
    # Imported here: the simulator is only needed by this command, and `raft` must not
    # be a cost of every other one.
    try:
        from raft.sim import main as sim_main
    except ModuleNotFoundError as error:
        if error.name not in ("raft", "raft.sim"):
            raise
        raise CliError(
            UNKNOWN_ERROR,
            f"'quiver sim' cannot start: the simulator is not importable ({error})",
            EXIT_FAILURE,
        ) from error
    return sim_main(extra)


_Handler = Callable[[argparse.Namespace, list[str]], int]


def _init(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.init import InitError, init_cluster

    try:
        cluster = init_cluster(
            Path(args.dir),
            nodes=args.nodes,
            zones=args.zones,
            tick_ms=args.tick_ms,
            election_ticks=args.election_ticks,
            snapshot_entries=args.snapshot_entries,
            hosts=tuple(args.hosts.split(",")) if args.hosts else None,
        )
    except InitError as error:
        raise CliError(INVALID_REQUEST, str(error)) from None
    print(f"initialised a {len(cluster.nodes)}-node cluster in {cluster.directory}")
    return EXIT_OK


def _add_node(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.init import InitError, add_node

    try:
        entry = add_node(Path(args.dir), zone=args.zone)
    except (InitError, FileNotFoundError, KeyError) as error:
        raise CliError(INVALID_REQUEST, str(error)) from None
    config = Path(args.dir) / entry.config
    print(f"prepared n{entry.id} in {entry.zone} (client {entry.grpc}, peer {entry.peer})")
    print(f"start it:      quiver serve --config {config}")
    print(f"then add it:   quiver admin add-learner {entry.id} --dir {args.dir}")
    print(f"and promote:   quiver admin promote {entry.id} --dir {args.dir}")
    return EXIT_OK


def _admin(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.admin import run_admin
    from cluster.errors import QuiverError

    try:
        if args.action == "roll":
            from cluster.admin import roll

            roll(Path(args.dir))
            return EXIT_OK
        print(run_admin(Path(args.dir), args.action, args.node or 0, args.catch_up_timeout))
    except QuiverError as error:
        raise CliError(error.code, error.message) from None
    return EXIT_OK


def _serve(args: argparse.Namespace, _extra: list[str]) -> int:
    if not args.config:
        raise CliError(INVALID_REQUEST, "quiver serve: --config FILE is required", EXIT_USAGE)
    # Until the node's loop takes SIGINT over (a stop without leadership hand-over), SIGINT
    # ends the process as SIGTERM does, without a KeyboardInterrupt traceback in its log
    # (the supervisor and the chaos harness stop a node still starting with it).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from cluster.config import load_node_config
    from cluster.eventloop import EventLoopError
    from cluster.node import serve

    try:
        return serve(load_node_config(Path(args.config)))
    except EventLoopError as error:  # raised before the node starts
        raise CliError(INVALID_REQUEST, f"quiver serve: {error}", EXIT_USAGE) from None


def _up(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.supervisor import up

    return up(
        Path(args.dir),
        nodes=args.nodes,
        zones=args.zones,
        detach=args.detach,
        tick_ms=args.tick_ms,
        election_ticks=args.election_ticks,
        snapshot_entries=args.snapshot_entries,
    )


def _down(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.supervisor import down

    return down(Path(args.dir))


def _status(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.status import print_status

    return print_status(Path(args.dir), args.format)


def _query(args: argparse.Namespace, _extra: list[str]) -> int:
    from cluster.shell import run_query

    return run_query(args)


@dataclass(frozen=True, slots=True)
class _Command:
    name: str
    summary: str
    handler: _Handler
    data_output: bool = False


_COMMANDS: tuple[_Command, ...] = (
    _Command("up", "start a supervised local three-node, three-zone cluster", _up),
    _Command("down", "stop the local cluster started by 'quiver up'", _down),
    _Command("status", "show members, zones, leader and health", _status, data_output=True),
    _Command("query", "run a Cypher query against the cluster", _query, data_output=True),
    _Command("init", "create the CA, node certificates, key file and admin user", _init),
    _Command("serve", "run one node process", _serve),
    _Command(
        "add-node", "prepare one more node (certificate, config) for a running cluster", _add_node
    ),
    _Command(
        "admin",
        "change membership or leadership online: add-learner, promote, demote, remove, "
        "transfer-leader; or restart every node in turn: roll",
        _admin,
    ),
    _Command("sim", "run the deterministic Raft simulator over many seeds", _sim),
    _Command("bench", "run the benchmarks", _bench),
    _Command(
        "chaos",
        "run fault-injection tests against real processes ('chaos proxy': the fault proxy)",
        _chaos,
    ),
    _Command(
        "backup",
        "take, list, verify and prune encrypted backups, or take them on a schedule",
        _backup,
        data_output=True,
    ),
    _Command("restore", "seed a new cluster (in --dir) from a backup", _restore),
    _Command("audit", "inspect and verify the tamper-evident audit log", _audit),
    _Command("certs", "rotate the cluster's TLS certificates without a restart", _certs),
)

_SIM_EPILOG = (
    "Every other option is passed to the simulator (raft.sim): "
    "--seeds N, --start S, --nodes 3|5|7, --steps K."
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="quiver",
        description="Quiver: a replicated, encrypted property-graph database.",
        allow_abbrev=False,
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for command in _COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.summary,
            description=command.summary[0].upper() + command.summary[1:] + ".",
            epilog=_SIM_EPILOG if command.name == "sim" else None,
            allow_abbrev=False,
        )
        sub.add_argument(
            "--dir",
            default=DEFAULT_DIR,
            help=(
                "accepted like every command; the simulator keeps no files"
                if command.name == "sim"
                else f"the cluster directory, holding cluster.json (default: {DEFAULT_DIR})"
            ),
        )
        if command.name == "query":
            sub.add_argument(
                "--format",
                choices=("table", "json", "csv"),
                default="table",
                help="output format (default: table)",
            )
        elif command.data_output:
            sub.add_argument(
                "--format",
                choices=("text", "json"),
                default="text",
                help="output format (default: text)",
            )
        if command.name in ("init", "up"):
            sub.add_argument("--nodes", type=int, default=3, help="nodes (default: 3)")
            sub.add_argument("--zones", type=int, default=3, help="zones (default: 3)")
            sub.add_argument(
                "--tick-ms", type=int, default=50, help="Raft tick in ms (default: 50)"
            )
            sub.add_argument(
                "--election-ticks",
                type=int,
                default=10,
                help="ticks before a follower campaigns, randomised up to twice (default: 10)",
            )
            sub.add_argument(
                "--snapshot-entries",
                type=int,
                default=10_000,
                help=(
                    "entries applied between snapshots; the log is compacted below each "
                    "snapshot and a lagging node catches up from one (default: 10000)"
                ),
            )
        if command.name == "init":
            sub.add_argument(
                "--hosts",
                default=None,
                metavar="HOST,HOST,...",
                help=(
                    "for containers (docker-compose.yml): node N is reached at the Nth host "
                    "on ports 7000 (clients) and 7100 (peers), listens on all its "
                    "interfaces and keeps its data in /var/lib/quiver (default: loopback "
                    "ports chosen free)"
                ),
            )
        if command.name == "up":
            sub.add_argument(
                "--detach",
                action="store_true",
                help="return once a leader is elected, leaving the supervisor running",
            )
        if command.name == "add-node":
            sub.add_argument(
                "--zone", default=None, help="its zone (default: the zone with fewest nodes)"
            )
        if command.name == "admin":
            sub.add_argument(
                "action",
                choices=("add-learner", "promote", "demote", "remove", "transfer-leader", "roll"),
                help=(
                    "add-learner N: make a node prepared by 'quiver add-node' (and started) "
                    "a non-voting member; promote N: learner to voter, once caught up; "
                    "demote N: voter to learner; remove N: take a member out (not the "
                    "leader: transfer first); transfer-leader [N]: move leadership to N or "
                    "to the most up-to-date voter; roll: restart every node of a 'quiver up' "
                    "cluster in turn (after an upgrade), the leader last, handing over"
                ),
            )
            sub.add_argument("node", nargs="?", type=int, help="the node id")
            sub.add_argument(
                "--catch-up-timeout",
                type=float,
                default=30.0,
                help="promote: seconds to wait for the learner to catch up (default: 30)",
            )
        if command.name == "chaos":
            sub.add_argument(
                "action",
                nargs="?",
                help=(
                    "proxy [--host H] [--port P] [--seed N]: a Toxiproxy-compatible fault "
                    "proxy on loopback; run [--workload W] [--nemesis N,...] [--time-limit S] "
                    "[--clients N] [--seed N] [--out DIR]: a checked run against a fresh "
                    "cluster under faults (see 'quiver chaos run --help')"
                ),
            )
        if command.name == "audit":
            sub.add_argument(
                "action",
                nargs="?",
                help=(
                    "verify [FILE]: check the hash chain of FILE, or of every audit log under --dir"
                ),
            )
            sub.add_argument("file", nargs="?", help="verify: one audit log file")
        if command.name == "certs":
            sub.add_argument(
                "action",
                choices=("rotate",),
                help="rotate: issue every node a new certificate (running nodes reload it)",
            )
            sub.add_argument(
                "--new-ca",
                action="store_true",
                help="also make a new CA; the old one stays trusted until --retire-old-ca",
            )
            sub.add_argument(
                "--retire-old-ca",
                action="store_true",
                help="trust only the current CA (once every node presents its certificate)",
            )
        if command.name == "backup":
            _backup_arguments(sub)
        if command.name == "restore":
            _restore_arguments(sub)
        if command.name == "serve":
            sub.add_argument("--config", help="the node's configuration file (JSON)")
        if command.name == "query":
            sub.add_argument("statement", nargs="?", help="the Cypher statement")
            sub.add_argument("-c", "--command", dest="query", help="the Cypher statement")
            sub.add_argument(
                "-p",
                "--param",
                action="append",
                default=[],
                metavar="NAME=VALUE",
                help="a parameter; VALUE is JSON when it parses as JSON, else a string",
            )
            sub.add_argument(
                "--consistency",
                choices=("linearizable", "causal", "stale"),
                default=None,
                help="run as a read with this consistency (default: a write on the leader)",
            )
            sub.add_argument(
                "--user",
                default=None,
                help="log in as this user (password from $QUIVER_PASSWORD, else asked); "
                "default: the initial admin of the dir's credentials file",
            )
            sub.add_argument(
                "--impersonate",
                default="",
                metavar="USER",
                help="run as USER (the logged-in user needs the IMPERSONATE privilege for them)",
            )
            sub.add_argument(
                "-d",
                "--database",
                choices=("neo4j", "system"),
                default="neo4j",
                help="'system' runs administration commands (CREATE USER, GRANT ..., SHOW USERS)",
            )
        if command.name == "bench":
            sub.add_argument(
                "target",
                nargs="?",
                help=f"what to benchmark: {', '.join(BENCH_TARGETS)}",
            )
            sub.add_argument(
                "--nodes", type=int, default=100_000, help="store: nodes in the read graph"
            )
            sub.add_argument(
                "--relationships",
                type=int,
                default=500_000,
                help="store: relationships in the read graph",
            )
        sub.set_defaults(handler=command.handler)
    return parser


def _backup_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "action",
        choices=("take", "list", "verify", "prune", "schedule"),
        help=(
            "take: stream a backup from a follower into the backup directory; list; verify "
            "[NAME]: prove a backup restores (default: the newest); prune --keep N: keep the "
            "newest N; schedule --every T --keep N: take, verify and prune every T"
        ),
    )
    sub.add_argument("name", nargs="?", help="verify: a backup's name or path, or 'latest'")
    sub.add_argument(
        "--to",
        default=None,
        metavar="DIR",
        help="the backup directory (default: backups/ in the cluster directory)",
    )
    sub.add_argument(
        "--from",
        dest="from_node",
        type=int,
        default=0,
        metavar="N",
        help="take: stream from member N (default: the most up-to-date follower)",
    )
    sub.add_argument(
        "--keep", type=int, default=0, help="take, schedule: then keep only the newest N"
    )
    sub.add_argument(
        "--no-verify", action="store_true", help="take: do not restore it trially afterwards"
    )
    sub.add_argument(
        "--every",
        default="1h",
        metavar="T",
        help="schedule: how often, as seconds or with s, m, h or d (default: 1h)",
    )
    sub.add_argument(
        "--rounds", type=int, default=0, help="schedule: stop after N rounds (default: never)"
    )


def _restore_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("backup", help="the backup: its path, or a name in --from-dir's backups")
    sub.add_argument(
        "--from-dir",
        default=None,
        metavar="DIR",
        help=(
            "the backed-up cluster's directory, for its key file and credentials (default: "
            "the directory whose backups/ holds the backup)"
        ),
    )
    sub.add_argument(
        "--key-file",
        default=None,
        help="the key file that opens the backup (default: the backed-up cluster's)",
    )
    sub.add_argument("--nodes", type=int, default=3, help="nodes of the new cluster (default: 3)")
    sub.add_argument("--zones", type=int, default=3, help="zones (default: 3)")


def _run(argv: Sequence[str]) -> int:
    if list(argv[:2]) == ["chaos", "run"] and any(a in ("-h", "--help") for a in argv[2:]):
        from chaos.runner import main as run_main  # its own options, not the chaos parser's

        return run_main(["--help"])
    parser = build_parser()
    # Known-args parsing so that `sim` can hand its own options to the simulator.
    args, extra = parser.parse_known_args(list(argv))
    passes_through = (
        args.command == "sim"
        or (args.command == "chaos" and args.action in ("proxy", "run"))
        or (args.command == "bench" and args.target == "bolt")
    )
    if extra and not passes_through:
        raise CliError(
            INVALID_REQUEST,
            f"quiver {args.command}: unrecognized arguments: {' '.join(extra)}",
            EXIT_USAGE,
        )
    handler: _Handler = args.handler
    return handler(args, extra)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _run(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # here, so that a closed pipe raises where it is handled
        return status
    except CliError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return error.exit_status
    except NoClusterError as error:
        print(f"{INVALID_REQUEST}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`quiver status | head -1`): as CPython's documentation
        # recommends, point stdout at devnull so that the flush at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the command modules raise
    # cluster.cli.CliError, which must be the class that main() catches.
    from cluster.cli import main as _main

    raise SystemExit(_main())
