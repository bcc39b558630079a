"""A step's network, for real: slirp4netns in the step's namespace, the executor on a host of
its own (a network namespace made by tests/fixtures/netns.py, 198.18.0.0/24), a web server on
another host of that network, and listeners on the executor host's loopback and on all its
addresses (where a judicator or any cluster port would be)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fixtures.netns import Host, Network
from tests.fixtures.servers import missing

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB_PORT, LOOPBACK_PORT, NODE_PORT = 8080, 4100, 4000
ALLOW_TEST_NET = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16"

LISTEN = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
print("up", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"HOST-SECRET\\n"); c.close()
"""

PROBE = """
import socket, json, urllib.request
targets = {targets!r}
found = {{}}
for name, (host, port) in targets.items():
    try:
        if name == "web":
            with urllib.request.urlopen(f"http://{{host}}:{{port}}/page.txt", timeout=5) as r:
                found[name] = "ok:" + r.read().decode()
        else:
            s = socket.create_connection((host, port), timeout=5)
            found[name] = "ok:" + s.recv(100).decode()
    except Exception as exc:
        found[name] = "failed:" + type(exc).__name__
print(json.dumps(found))
"""


@dataclass
class Site:
    net: Network
    executor: Host
    web: Host


def _start(net: Network, host: Host, argv: list[str], cwd: str | None = None
           ) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(net.argv(host, argv), stdout=subprocess.PIPE, cwd=cwd,
                            start_new_session=True)
    return proc


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if os.geteuid() != 0:
        missing("network namespaces need root")
    net = Network()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        executor, web = net.add("exe", 1), net.add("web", 2)
        with tempfile.TemporaryDirectory(prefix="khala-test-web-") as pages:
            with open(os.path.join(pages, "page.txt"), "w") as fh:
                fh.write("hello from the web host")
            procs.append(_start(net, web, [sys.executable, "-m", "http.server", "--bind",
                                           web.address, str(WEB_PORT)], cwd=pages))
            for bind, port in (("127.0.0.1", LOOPBACK_PORT), ("0.0.0.0", NODE_PORT)):
                proc = _start(net, executor, [sys.executable, "-c", LISTEN, bind, str(port)])
                procs.append(proc)
                assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
            _wait_web(net, executor, web)
            yield Site(net, executor, web)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        net.close()


def _wait_web(net: Network, executor: Host, web: Host) -> None:
    probe = ("import urllib.request, time\n"
             "for _ in range(200):\n"
             "    try:\n"
             f"        urllib.request.urlopen('http://{web.address}:{WEB_PORT}/page.txt', "
             "timeout=1).read(); break\n"
             "    except OSError: time.sleep(0.05)\n")
    subprocess.run(net.argv(executor, [sys.executable, "-c", probe]), check=True, timeout=30)


def step(site: Site, network: bool, deny: str = ALLOW_TEST_NET) -> dict[str, str]:
    """Run the probe in a sandboxed step on the executor host; its findings per target."""
    address = site.executor.address
    targets = {"web": (site.web.address, WEB_PORT),
               "host_loopback_via_gateway": ("10.0.2.2", LOOPBACK_PORT),
               "node_port_via_gateway": ("10.0.2.2", NODE_PORT),
               "node_port_at_host_address": (address, NODE_PORT),
               "own_loopback": ("127.0.0.1", LOOPBACK_PORT)}
    request = {"deny": deny, "network": network, "script": PROBE.format(targets=targets)}
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run(site.net.argv(site.executor, [sys.executable, "-m",
                                                         "tests.sandbox.net_step"]),
                          input=json.dumps(request).encode(), capture_output=True, cwd=ROOT,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    outcome = json.loads(done.stdout)
    assert outcome["reason"] == "ok", outcome
    found: dict[str, str] = json.loads(outcome["stdout"])
    return found


def test_with_the_network_the_step_reaches_a_server_but_never_this_host(site: Site) -> None:
    found = step(site, network=True)
    assert found["web"] == "ok:hello from the web host"
    for name in ("host_loopback_via_gateway", "node_port_via_gateway",
                 "node_port_at_host_address", "own_loopback"):
        assert found[name].startswith("failed:"), found


def test_without_the_network_the_step_reaches_nothing(site: Site) -> None:
    found = step(site, network=False)
    assert all(v.startswith("failed:") for v in found.values()), found


def test_a_denied_range_is_unreachable(site: Site) -> None:
    found = step(site, network=True, deny=f"{ALLOW_TEST_NET},{site.web.address}/32")
    assert found["web"].startswith("failed:"), found
    assert found["node_port_via_gateway"].startswith("failed:"), found
