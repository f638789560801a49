"""Fault injection and checking for real Quiver processes (issue #8).

Modules, each with one job:
- ``history``: recorded client histories (JSON lines) and their pairing into operations;
- ``linearizability``, ``checkers``: the verdicts (registers per key, sets, bank totals);
- ``workload``: worker loops over small client protocols (in-memory models in tests);
- ``adapters``: those protocols, and bank and graph workloads, over ``cluster.connect``;
- ``toxiproxy``: a Toxiproxy-compatible fault proxy (``quiver chaos proxy``);
- ``nemesis``: process signals, partitions as proxy toxics, bounded fault schedules;
- ``netns``: network namespaces with nftables/iptables faults, when root;
- ``harness``: a real cluster whose every link goes through the fault proxy;
- ``runner``: ``quiver chaos run``, a checked run end to end; ``report``: its HTML page.

Planted bugs and disk/clock faults inside the node are ``store.failpoints``, armed only by
the environment this package's harness gives the node processes.

Must never: be imported by production code (``raft``, ``store``, ``cypher``, ``cluster``),
or send traffic anywhere but loopback and the test's own network namespaces.
"""
