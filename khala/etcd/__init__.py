"""The etcd toolkit: etcd v3 over its HTTP gateway (etcd3gw), as every node uses it — a client
pool that fails over between endpoints with a bounded back-off (`client`), a prefix watch that
lists then follows (`watch`), and a lease keeper that keeps one key alive and never takes over a
key another lease holds (`lease`). Judicator registration, the cluster bus (khala/discovery/) and
the executors' stream registry (khala/streams/registry.py) are built on it.

Every thread here is a daemon with a stop flag, every wait is bounded, reconnects are loops with
a bounded back-off that fail over between the endpoints, never recursion.
"""
