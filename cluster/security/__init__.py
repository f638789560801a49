"""Security building blocks (issue #7): the tamper-evident audit log, password hashing with
lockout, and Neo4j's privilege resolution. Each module stands alone; wiring them into the
node and the query engine is separate work."""
