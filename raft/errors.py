"""Errors of the consensus core. Each is a plain exception; the cluster maps them to
Neo4j-style status codes at its edge (raft/ knows nothing of status codes)."""


class RaftError(Exception):
    """Base of every error the core raises on purpose."""


class ProposalDroppedError(RaftError):
    """The proposal was not accepted: no leader known, a transfer in progress, or a limit hit."""


class CompactedError(RaftError):
    """The requested index is older than the first index still in the log (it was compacted)."""


class UnavailableError(RaftError):
    """The requested index is newer than the last index in the log."""


class SnapshotTemporarilyUnavailableError(RaftError):
    """The snapshot is not ready yet; the leader will retry later."""


class SnapshotOutOfDateError(RaftError):
    """The snapshot offered is older than the one the storage already holds."""


class ConfChangeError(RaftError):
    """A membership change that cannot be applied to the current configuration."""


class StepLocalMessageError(RaftError):
    """A local-only message (hup, beat, ...) arrived from the network."""


class StepPeerNotFoundError(RaftError):
    """A response arrived from a peer that is not in the configuration."""
