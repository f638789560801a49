"""Fault injection and checking for real Quiver processes.

Will own (issue #8): nemeses (SIGKILL, SIGSTOP, partitions, latency through
Toxiproxy-API proxies on loopback, ``tc netem``/nftables where root allows), client
workloads, recorded histories, and the linearizability and lost-write checkers.

Must never: be imported by production code (``raft``, ``store``, ``cypher``, ``cluster``),
or send traffic anywhere but loopback and the test's own network namespaces.

Nothing is implemented yet; this package arrives with issue #8.
"""
