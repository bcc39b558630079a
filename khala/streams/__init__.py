"""Live output and input of running tasks: the bounded per-task log (`log.py`), the
executor's stream endpoint (`hub.py`), its wire framing (`wire.py`), the gateway's client of it
(`client.py`) and the endpoints' registration in etcd (`registry.py`). See docs/streaming.md."""
