"""A step's network, when it asks for one and the executor allows it: slirp4netns, a user-mode
TCP/IP stack, attached to the step's own network namespace.

Without the network a step's namespace has only its own loopback. With it, bubblewrap holds
the step before its command (`--block-fd`) while the executor:

1. starts slirp4netns as the sandbox user (unprivileged, its seccomp filter on), joined to the
   step's user and network namespaces: it creates `tap0` there and makes the step's
   connections as its own sockets on the host, so they leave the host like any unprivileged
   process's. `--disable-host-loopback` refuses 10.0.2.2, which would otherwise reach the
   host's 127.0.0.1;
2. configures `tap0` itself (10.0.2.100/24, default route via 10.0.2.2, DNS at 10.0.2.3) and
   adds an `unreachable` route for each denied range (the operator's `network_deny`, by
   default every non-internet IPv4 range) and for each address of this host (a service
   listening on the host's own address is the host's, like its loopback). The step has no
   capability in its namespace, so it cannot change them;
3. releases the step. No IPv6 (slirp4netns is not asked for it): only the loopback has ::1.

Not slirp4netns's `--configure`: that also brings the loopback up, while bubblewrap, from the
moment it tells the step's pid, sets the same loopback up on its own (its address added as
new). Whichever comes second loses: bubblewrap fails the step ("loopback: Failed
RTM_NEWADDR"). Nothing the executor does touches the loopback, so the two never meet.

slirp4netns exits when the step ends (the executor closes its exit pipe; an executor that dies
closes it too).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass

from khala.errors import ConfigError, SandboxUnavailable

SLIRP = "slirp4netns"
TAP = "tap0"
NAMESERVER = "10.0.2.3"  # slirp4netns's DNS forwarder (to the host's resolver)
SLIRP_NET = ipaddress.IPv4Network("10.0.2.0/24")
GUEST = "10.0.2.100/24"  # the step's address on tap0 (slirp4netns's usual guest address)
GATEWAY = "10.0.2.2"  # slirp4netns's router
READY_SECONDS = 10.0
MTU = "65520"
NS_GET_USERNS = 0xB701  # ioctl: the user namespace owning a namespace (linux/nsfs.h)


@dataclass(frozen=True)
class NetworkPolicy:
    """Whether steps may have the network, and what they may never reach with it."""

    allowed: bool = False
    deny: tuple[ipaddress.IPv4Network, ...] = ()

    @classmethod
    def parse(cls, allowed: bool, deny: str) -> NetworkPolicy:
        """From the executor's settings; ConfigError for a range that is not IPv4 CIDR."""
        ranges = []
        for item in (x.strip() for x in deny.split(",")):
            if not item:
                continue
            try:
                ranges.append(ipaddress.IPv4Network(item, strict=False))
            except ValueError as exc:
                raise ConfigError(f"network_deny: {item!r} is not an IPv4 range (CIDR): "
                                  f"{exc}") from exc
        return cls(allowed, tuple(ranges))


def find_slirp() -> str:
    path = shutil.which(SLIRP)
    if path is None:
        raise SandboxUnavailable("allow_network needs slirp4netns (apt-get install slirp4netns;"
                                 " scripts/install-deps.sh installs it)")
    return path


def host_addresses() -> list[ipaddress.IPv4Address]:
    """This host's own IPv4 addresses (every interface), as `ip` lists them."""
    done = subprocess.run(["ip", "-4", "-j", "addr", "show"], capture_output=True, timeout=10,
                          check=False)
    if done.returncode != 0:
        raise SandboxUnavailable(f"cannot list this host's addresses: {done.stderr!r}")
    found = []
    for link in json.loads(done.stdout or b"[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and info.get("local"):
                found.append(ipaddress.IPv4Address(info["local"]))
    return found


def tap_config() -> list[str]:
    """`ip -batch` lines giving the step's tap0 its address and default route (never the
    loopback: bubblewrap's own). Pure."""
    return [f"link set {TAP} mtu {MTU} up", f"addr add {GUEST} dev {TAP}",
            f"route add default via {GATEWAY} dev {TAP}"]


def deny_routes(deny: tuple[ipaddress.IPv4Network, ...],
                own: list[ipaddress.IPv4Address]) -> list[str]:
    """`ip -batch` lines making every denied range and own address unreachable in a step's
    namespace. Pure. Loopback ranges are left out (the step's loopback is its own, and local
    routes come first anyway); a range holding slirp4netns's own network is narrowed by the
    more specific route of that network, which the kernel prefers."""
    targets = [net for net in deny if not net.is_loopback]
    targets += [ipaddress.IPv4Network(addr) for addr in own if not addr.is_loopback]
    lines = [f"route add unreachable {net}" for net in dict.fromkeys(targets)
             if not net.subnet_of(SLIRP_NET)]
    return lines


def read_info(fd: int, deadline: float) -> int:
    """The pid of the sandbox's first process, from bubblewrap's `--info-fd` JSON."""
    data = b""
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except (ValueError, KeyError):
            continue
    raise SandboxUnavailable(f"bubblewrap gave no sandbox pid for the network: {data[:200]!r}")


def namespaces(pid: int) -> tuple[int, int]:
    """fds of the network namespace of `pid` and of the user namespace that owns it. Not the
    user namespace `pid` is in: bubblewrap's --disable-userns moves the step into a nested
    one, which holds no capability over the network namespace."""
    net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        user_fd = fcntl.ioctl(net_fd, NS_GET_USERNS)
    except OSError as exc:
        os.close(net_fd)
        raise SandboxUnavailable(f"cannot find the owner of the step's network: {exc}") from exc
    os.set_inheritable(user_fd, False)
    return net_fd, user_fd


class StepNetwork:
    """slirp4netns serving one step's namespace; `close()` ends it."""

    def __init__(self, policy: NetworkPolicy, uid: int, gid: int) -> None:
        self.policy, self.uid, self.gid = policy, uid, gid
        self.slirp = find_slirp()
        self.proc: subprocess.Popen[bytes] | None = None
        self._exit_w: int | None = None

    def attach(self, pid: int) -> None:
        """Give the namespaces of `pid` (held by bubblewrap) the network; SandboxUnavailable
        with slirp4netns's own words if it cannot."""
        net_fd, user_fd = namespaces(pid)
        try:
            self._start(net_fd, user_fd)
            self._configure(net_fd)  # by the namespace held open, never by a pid reused
        finally:
            os.close(net_fd)

    def _start(self, net_fd: int, user_fd: int) -> None:
        """slirp4netns on the namespaces of these fds, up (its ready fd written)."""
        ready_r, ready_w = os.pipe()
        exit_r, self._exit_w = os.pipe()
        argv = [self.slirp, f"--mtu={MTU}", "--disable-host-loopback",
                "--enable-seccomp", f"--ready-fd={ready_w}", f"--exit-fd={exit_r}",
                f"--userns-path=/proc/self/fd/{user_fd}", "--netns-type=path",
                f"/proc/self/fd/{net_fd}", TAP]
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, pass_fds=(ready_w, exit_r, net_fd, user_fd),
                env={"PATH": "/usr/bin:/bin"}, start_new_session=True, preexec_fn=self._drop)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start slirp4netns: {exc}") from exc
        finally:
            for fd in (ready_w, exit_r, user_fd):
                os.close(fd)
        try:
            ready = select.select([ready_r], [], [], READY_SECONDS)[0]
            if not ready or os.read(ready_r, 1) != b"1":
                raise SandboxUnavailable(f"slirp4netns did not come up: {self._why()}")
        finally:
            os.close(ready_r)

    def _drop(self) -> None:
        os.setgroups([])
        os.setgid(self.gid)
        os.setuid(self.uid)

    def _why(self) -> str:
        assert self.proc is not None
        try:  # its ready pipe closed or stayed silent: it exits soon, or is still starting
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return f"no answer within {READY_SECONDS:g} s"
        assert self.proc.stderr is not None
        return self.proc.stderr.read(2000).decode(errors="replace").strip() or "it exited"

    def _configure(self, net_fd: int) -> None:
        lines = tap_config() + deny_routes(self.policy.deny, host_addresses())
        done = subprocess.run(["nsenter", f"--net=/proc/self/fd/{net_fd}", "ip", "-batch", "-"],
                              input="\n".join(lines).encode() + b"\n", capture_output=True,
                              pass_fds=(net_fd,), timeout=10, check=False)
        if done.returncode != 0:
            raise SandboxUnavailable(f"cannot configure the step's network: "
                                     f"{done.stderr.decode(errors='replace').strip()}")

    def close(self) -> None:
        if self._exit_w is not None:
            os.close(self._exit_w)  # slirp4netns exits when its exit pipe closes
            self._exit_w = None
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5.0)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None
