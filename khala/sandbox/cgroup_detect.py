"""Where this process may create run cgroups: the cgroup version, and a parent whose memory and
pids controllers are ours to use.

On cgroup v2 (the unified hierarchy) the run cgroups go under the first of:

1. `<own cgroup>/khala`, when the executor's own cgroup already enables memory and pids for its
   children (someone set the delegation up for us);
2. `<own cgroup>/khala`, when the own cgroup was handed to us — by systemd's `Delegate=yes`
   (systemd marks such a cgroup with a `trusted.delegate` or `user.delegate` extended attribute)
   or as the root of a cgroup namespace (a container's) — and offers memory and pids. A cgroup
   that holds processes cannot enable controllers for its children, so our own processes move
   into the leaf `<own cgroup>/node` first;
3. `<root>/khala`, when the root cgroup enables them and we may write there (a root executor on
   a host without a cgroup manager, or beside one).

Anything else is refused with what was found at each place; controllers are never enabled in a
cgroup that was not given to us. On cgroup v1, `<own>/khala` or `<root>/khala` of each of
memory, pids and cpuacct.

The cpu controller (a step's CPU rate) is optional on both: used where it is mounted and ours
(v1), or offered to the chosen cgroup and enabled for its children with memory and pids (v2).
Without it everything works but a CPU rate, which a step then cannot have (its run says why).
"""

from __future__ import annotations

import os

from khala.errors import SandboxUnavailable
from khala.sandbox.cgroup_v2 import V2Tree
from khala.sandbox.cgroups import (
    CGROUP_ROOT,
    CPU_CONTROLLER,
    PARENT_NAME,
    SELF_CGROUP,
    V1_CONTROLLERS,
    V2_CONTROLLERS,
    CgroupTree,
    V1Tree,
    own_cgroups,
    read_text,
    write_text,
)

LEAF_NAME = "node"  # in a delegated cgroup: where the executor's own processes move
DELEGATE_XATTRS = ("trusted.delegate", "user.delegate")
MOVE_ROUNDS = 5  # passes over cgroup.procs (a process may fork while we move them)
HOW_TO = ("run the executor as root where the root cgroup enables memory and pids, under "
          "systemd with Delegate=yes, or in a container with its own writable cgroup "
          "namespace (docs/sandbox.md)")


def _under(base: str, rel: str) -> str:
    return os.path.normpath(os.path.join(base, rel.lstrip("/")))


def _words(path: str) -> list[str]:
    try:
        return read_text(path).split()
    except OSError:
        return []


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError:
        return False
    return os.access(os.path.join(path, "cgroup.procs"), os.W_OK)


def _v1_tree(root: str, own: dict[str, str]) -> V1Tree:
    parents: dict[str, str] = {}
    for controller in V1_CONTROLLERS:
        base = os.path.join(root, controller)
        if not os.path.isdir(base) or controller not in own:
            raise SandboxUnavailable(
                f"cgroup v1 controller {controller!r} is not mounted at {base}")
        candidates = [os.path.join(_under(base, own[controller]), PARENT_NAME),
                      os.path.join(base, PARENT_NAME)]
        chosen = next((c for c in candidates if _writable_dir(c)), None)
        if chosen is None:
            raise SandboxUnavailable(
                f"cannot create cgroups for {controller!r} under {' or '.join(candidates)}"
                " (run the executor as root or delegate a writable cgroup)")
        parents[controller] = chosen
    cpu_base = os.path.join(root, CPU_CONTROLLER)
    if os.path.isdir(cpu_base) and CPU_CONTROLLER in own:
        candidates = [os.path.join(_under(cpu_base, own[CPU_CONTROLLER]), PARENT_NAME),
                      os.path.join(cpu_base, PARENT_NAME)]
        chosen = next((c for c in candidates if _writable_dir(c)), None)
        if chosen is not None:
            parents[CPU_CONTROLLER] = chosen
    return V1Tree(parents)


def is_root_cgroup(path: str) -> bool:
    """The hierarchy's true root has no `cgroup.events` (the root of a cgroup namespace has)."""
    return not os.path.exists(os.path.join(path, "cgroup.events"))


def delegated(path: str, root: str) -> bool:
    """Handed to us: marked by systemd's Delegate=yes, or the root of our cgroup namespace
    (what a container sees at `root`)."""
    for name in DELEGATE_XATTRS:
        try:
            if os.getxattr(path, name).strip(b"\0\n") == b"1":
                return True
        except OSError:
            continue
    return os.path.realpath(path) == os.path.realpath(root) and not is_root_cgroup(path)


def take_over(base: str) -> str | None:
    """Move every process of the delegated cgroup `base` into `base/node` and enable memory and
    pids for its children; None if done, else why not."""
    leaf = os.path.join(base, LEAF_NAME)
    try:
        os.makedirs(leaf, 0o755, exist_ok=True)
        for _ in range(MOVE_ROUNDS):
            pids = _words(os.path.join(base, "cgroup.procs"))
            if not pids:
                break
            for pid in pids:
                try:
                    write_text(os.path.join(leaf, "cgroup.procs"), pid)
                except ProcessLookupError:
                    continue  # exited meanwhile
        _enable(base, list(V2_CONTROLLERS))
    except OSError as exc:
        return f"delegated, but cannot take it over: {exc}"
    return None


def _enable_in_parent(parent: str) -> str | None:
    """Create `parent` (our own `khala`) and enable memory and pids for its runs."""
    if not _writable_dir(parent):
        return f"cannot create or write {parent}"
    try:
        mine = _words(os.path.join(parent, "cgroup.subtree_control"))
        missing = [c for c in V2_CONTROLLERS if c not in mine]
        if missing or CPU_CONTROLLER not in mine:
            _enable(parent, missing)
    except OSError as exc:
        return f"cannot enable {' '.join(V2_CONTROLLERS)} in {parent}: {exc}"
    return None


def _enable(cgroup: str, required: list[str]) -> None:
    """Enable `required` for the children of `cgroup` (ours), and the optional cpu controller
    with them when it is offered there (one write). Should cpu be refused (e.g. a real-time
    process in the cgroup), `required` alone: steps then can have no CPU rate, nothing else
    changes. OSError if `required` cannot be enabled."""
    path = os.path.join(cgroup, "cgroup.subtree_control")
    offered = _words(os.path.join(cgroup, "cgroup.controllers"))
    enabled = _words(path)
    wanted = required + [c for c in (CPU_CONTROLLER,) if c in offered and c not in enabled]
    if not wanted:
        return
    try:
        write_text(path, " ".join("+" + c for c in wanted))
    except OSError:
        if not required or wanted == required:
            if required:
                raise
            return
        write_text(path, " ".join("+" + c for c in required))


def _v2_candidate(base: str, root: str, own: bool) -> str | None:
    """Make `base/khala` usable; None if it is, else why not."""
    offered = _words(os.path.join(base, "cgroup.controllers"))
    absent = [c for c in V2_CONTROLLERS if c not in offered]
    if absent:
        return f"{' and '.join(absent)} not available to it (cgroup.controllers)"
    enabled = _words(os.path.join(base, "cgroup.subtree_control"))
    if not all(c in enabled for c in V2_CONTROLLERS):
        if not (own and not is_root_cgroup(base) and delegated(base, root)):
            return ("memory and pids not enabled for its children (cgroup.subtree_control) "
                    "and the cgroup was not delegated to this process")
        why = take_over(base)
        if why:
            return why
    return _enable_in_parent(os.path.join(base, PARENT_NAME))


def _v2_tree(root: str, own: dict[str, str]) -> V2Tree:
    mine = _under(root, own.get("", "/"))
    found: list[str] = []
    for base, is_own in ((mine, True), (root, False)):
        if found and os.path.realpath(base) == os.path.realpath(mine):
            break  # our own cgroup is the root: tried already
        why = _v2_candidate(base, root, is_own)
        if why is None:
            return V2Tree(os.path.join(base, PARENT_NAME))
        found.append(f"{base}: {why}")
    raise SandboxUnavailable(
        "cgroup v2: no cgroup to create run cgroups in; " + "; ".join(found) + ". " + HOW_TO)


def detect(root: str = CGROUP_ROOT, self_cgroup: str = SELF_CGROUP) -> CgroupTree:
    """Find the cgroup version and a place to create run cgroups; SandboxUnavailable if none."""
    try:
        own = own_cgroups(read_text(self_cgroup))
    except OSError as exc:
        raise SandboxUnavailable(f"cannot read {self_cgroup}: {exc}") from exc
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return _v2_tree(root, own)
    if os.path.isdir(os.path.join(root, "memory")):
        return _v1_tree(root, own)
    raise SandboxUnavailable(f"no cgroup v1 or v2 hierarchy found at {root}")
