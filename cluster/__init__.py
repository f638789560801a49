"""The node process and its faces.

Owns the ``quiver`` command line (``cluster.cli``). Will own (issue #5, with Bolt in #6 and
security in #7): the gRPC services of ``proto``, TLS and mutual TLS between peers,
authentication, role-based access control, the audit log, the apply loop that feeds
committed Raft entries to ``store``, the local supervisor behind ``quiver up``, backups,
and the Python client (``cluster.connect``).

Must never: import ``chaos``.

Today only the command line exists, and every command that needs a node says so.
"""
