"""The node process and its faces.

Modules, each with one job:
- ``cli``: the ``quiver`` command line; ``init`` (CA, certificates, key file, configs),
  ``supervisor`` (``quiver up``/``down``), ``status``, ``shell`` (``quiver query``),
  ``admin`` (``quiver admin``: membership and leadership, online);
- ``node``: one node process — the Raft loop over ``store``, the apply loop, the write and
  read paths; ``statemachine``: what a committed entry does (dedup, concurrency check);
- ``transport``: Raft messages between peers over gRPC with mutual TLS; ``service``: the
  client-facing gRPC services (Query, Admin; health checking beside them);
- ``client``: the Python client, ``cluster.connect(...)`` and ``cluster.connect_async(...)``;
  ``session``: what the two share (routing, retries, bookmarks, request ids), with no I/O;
- ``config``, ``pki``, ``errors``, ``values``: files, certificates, typed errors, wire values.

Will own (#6, #7): Bolt, authentication, RBAC and the audit log; backups.

Must never: import ``chaos``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.client import connect, connect_async

__all__ = ["connect", "connect_async"]


def __getattr__(name: str) -> Any:
    # Lazy: the command line imports this package and must not pay for gRPC at start-up.
    if name in ("connect", "connect_async"):
        from cluster import client

        return getattr(client, name)
    raise AttributeError(f"module 'cluster' has no attribute {name!r}")
