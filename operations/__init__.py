"""I/O at the edges: the ISO steps' runner (subprocesses) and vCenter queries (pyVmomi).

Nothing here is imported by the pure logic in ``linuxkit_swarm``.
"""
