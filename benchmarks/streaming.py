"""Live-output latency: how long after a program prints a line the pow-1 websocket
client has it, on an idle local cluster (etcd, one judicator, one executor, one gateway).

    .venv/bin/python -m benchmarks.streaming --lines 40

The program prints its own wall-clock time on each line (same machine as the client); the
client subtracts it from the time the text frame arrived. Prints p50/p90/max in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from websockets.sync.client import connect

from khala.cli.local_etcd import find_etcd
from tests.fixtures.cluster import Cluster
from tests.fixtures.servers import EtcdServer


def measure(url: str, lines: int) -> list[float]:
    program = (f"import time\nfor _ in range({lines}):\n"
               "    print(repr(time.time()), flush=True)\n    time.sleep(0.05)\n")
    task = {"compile": {"command": "true", "files": [{"path": "p.py", "content": program}]},
            "execute": {"command": "python3 p.py", "timeout": 60}}
    delays: list[float] = []
    with connect(url, subprotocols=["pow-1"]) as ws:
        ws.send(json.dumps({"call": "task", "params": [json.dumps(task)]}).encode())
        pending = ""
        while True:
            message = ws.recv(timeout=60)
            now = time.time()
            if isinstance(message, bytes):
                break
            pending += message
            *done, pending = pending.split("\n")
            delays += [(now - float(line)) * 1000 for line in done if line]
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=40)
    args = parser.parse_args()
    binary = find_etcd()
    if binary is None:
        raise SystemExit("no etcd binary")
    with tempfile.TemporaryDirectory(prefix="khala-bench-stream-") as tmp:
        etcd = EtcdServer(binary, Path(tmp) / "etcd")
        (Path(tmp) / "etcd").mkdir()
        etcd.start()
        cluster = Cluster(Path(tmp), etcd_url=etcd.url)
        try:
            cluster.start_judicator()
            cluster.start_executor(slots=1)
            cluster.start_gateway()
            time.sleep(2.0)  # registrations settle
            url = cluster.gateway_url.replace("http://", "ws://") + "/api/v2/pow"
            measure(url, 5)  # warm-up
            delays = measure(url, args.lines)
        finally:
            cluster.stop()
            etcd.stop()
    delays.sort()
    print(f"print → websocket client, {len(delays)} lines: "
          f"p50 {statistics.median(delays):.1f} ms, "
          f"p90 {delays[int(len(delays) * 0.9) - 1]:.1f} ms, max {delays[-1]:.1f} ms")


if __name__ == "__main__":
    main()
