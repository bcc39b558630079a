"""`khala submit|get|tasks|cancel|signal`: API v2 from the command line, for people.

Talks to a gateway at --url or $KHALA_URL (default http://127.0.0.1:7000) with the standard
library only. Exit codes: 0 success, 1 the task failed (or was cancelled), 2 usage or input
errors, 3 the API answered an error, 4 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:7000"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
WAIT_STEP = 10.0  # seconds of each ?wait= call while --wait shows progress
MAX_WAIT_CALLS = 100_000  # bound of the --wait loop (over 11 days of 10 s calls)


class ApiFailure(Exception):
    def __init__(self, code: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after  # a 429's Retry-After: ask again after it


def request(base: str, method: str, path: str, body: Any = None,
            timeout: float = 90.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("KHALA_KEY"):  # an API key (docs/security.md)
        headers["Authorization"] = "Bearer " + os.environ["KHALA_KEY"]
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:  # noqa: S310 - user's URL
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            errors = json.loads(raw)["errors"]
            text = "; ".join(f"{e['title']}: {e['detail']}" for e in errors)
        except (ValueError, KeyError, TypeError):
            text = raw.decode(errors="replace")[:500]
        retry = exc.headers.get("Retry-After") if exc.code == 429 else None
        raise ApiFailure(EXIT_API, f"HTTP {exc.code}: {text}",
                         float(retry) if retry and retry.isdigit() else None) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ApiFailure(EXIT_UNREACHABLE, f"cannot reach {base}: {exc}") from exc


def call(base: str, method: str, path: str, body: Any = None, timeout: float = 90.0) -> Any:
    status, raw = request(base, method, path, body, timeout)
    return json.loads(raw) if raw else {"status": status}


def read_files(paths: list[str]) -> list[dict[str, str]]:
    """Files and directories → API v2 files (text when UTF-8, else base64)."""
    files: list[dict[str, str]] = []
    for given in paths:
        if os.path.isdir(given):
            for root, _, names in sorted(os.walk(given)):
                for name in sorted(names):
                    full = os.path.join(root, name)
                    files.append(_file(full, os.path.relpath(full, given)))
        else:
            files.append(_file(given, os.path.basename(given)))
    return files


def _file(path: str, name: str) -> dict[str, str]:
    with open(path, "rb") as fh:
        content = fh.read()
    try:
        return {"path": name, "content": content.decode("utf-8")}
    except UnicodeDecodeError:
        return {"path": name, "content": base64.b64encode(content).decode(),
                "encoding": "base64"}


def task_body(args: argparse.Namespace) -> dict[str, Any]:
    stdin = ""
    if args.input_file:
        with open(args.input_file, encoding="utf-8") as fh:
            stdin = fh.read()
    return {
        "user": args.user,
        "compile": {"command": args.compile, "timeout": args.compile_timeout,
                    "files": read_files(args.files)},
        "execute": {"command": args.execute, "timeout": args.timeout, "input": stdin,
                    "files": read_files(args.data)},
    }


def wait_for(base: str, task_id: str, quiet: bool) -> dict[str, Any]:
    started = time.monotonic()
    task: dict[str, Any] = {}
    for _ in range(MAX_WAIT_CALLS):
        try:
            task = call(base, "GET", f"/api/v2/tasks/{task_id}?wait={WAIT_STEP}")["data"]
        except ApiFailure as exc:  # 429: the gateway holds as many waits as it may
            if exc.retry_after is None:
                raise
            time.sleep(exc.retry_after)
            continue
        if not quiet:
            print(f"\r{task['id']}: {task['status']:<14} {time.monotonic() - started:6.1f}s",
                  end="", file=sys.stderr, flush=True)
        if task["done"]:
            break
    if not quiet:
        print(file=sys.stderr)
    return task


def show(base: str, task: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(task, indent=2))
    else:
        print(f"{task['id']}  {task['status']}  user {task['user']}  added {task['add_time']}")
        for step in ("compile", "execute"):
            result = (task.get("result") or {}).get(step)
            if result:
                print(f"[{step}] reason {result['reason']}, wall {result['wall_time']:.3f}s")
            if task["done"]:
                for stream, out in (("stdout", sys.stdout), ("stderr", sys.stderr)):
                    _, raw = request(base, "GET",
                                     f"/api/v2/tasks/{task['id']}/outputs/{step}/{stream}")
                    if raw:
                        out.flush()
                        out.buffer.write(raw)
                        out.flush()
    if not task["done"]:
        return EXIT_OK
    return EXIT_OK if task["status"] == "success" else EXIT_FAILED


def build(sub: Any) -> None:
    """Add the API v2 commands to the `khala` parser's subcommands."""
    def common(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--url", default=os.environ.get("KHALA_URL", DEFAULT_URL),
                         help="gateway URL (default $KHALA_URL or %(default)s)")
        cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser("submit", help="submit a task to a gateway (API v2)")
    common(cmd)
    cmd.add_argument("files", nargs="*", help="source files or directories")
    cmd.add_argument("--compile", default="true", help="compile command (default: true)")
    cmd.add_argument("--execute", required=True, help="execute command")
    cmd.add_argument("--data", action="append", default=[], help="data file or directory")
    cmd.add_argument("--input-file", help="file fed to the execute step's stdin")
    cmd.add_argument("--id", help="a client-chosen id (idempotent)")
    cmd.add_argument("--user", type=int, default=0)
    cmd.add_argument("--timeout", type=int, default=10, help="execute wall seconds")
    cmd.add_argument("--compile-timeout", type=int, default=60)
    cmd.add_argument("--wait", action="store_true", help="wait, show progress and outputs")
    for name, text in (("get", "show a task"), ("cancel", "cancel a task")):
        cmd = sub.add_parser(name, help=text)
        common(cmd)
        cmd.add_argument("id")
    cmd = sub.add_parser("signal", help="send a signal to a task's running step")
    common(cmd)
    cmd.add_argument("id")
    cmd.add_argument("signal", help="name (TERM, SIGUSR1) or number")
    cmd = sub.add_parser("tasks", help="list tasks, newest first")
    common(cmd)
    cmd.add_argument("--user", type=int)
    cmd.add_argument("--status", action="append", default=[])
    cmd.add_argument("--limit", type=int, default=20)
    cmd.add_argument("--oldest", action="store_true")


COMMANDS = ("submit", "get", "tasks", "cancel", "signal")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except ApiFailure as exc:
        print(f"khala {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except OSError as exc:
        print(f"khala {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    base = args.url
    if args.command == "submit":
        path = f"/api/v2/tasks/{args.id}" if args.id else "/api/v2/tasks"
        task = call(base, "POST", path, task_body(args))["data"]
        if args.wait:
            task = wait_for(base, task["id"], args.json)
            return show(base, task, args.json)
        print(json.dumps(task, indent=2) if args.json else task["id"])
        return EXIT_OK
    if args.command == "get":
        return show(base, call(base, "GET", f"/api/v2/tasks/{args.id}")["data"], args.json)
    if args.command == "cancel":
        task = call(base, "POST", f"/api/v2/tasks/{args.id}/cancel")["data"]
        print(json.dumps(task, indent=2) if args.json else f"{task['id']} {task['status']}")
        return EXIT_OK
    if args.command == "signal":
        answer = call(base, "PUT", f"/api/v2/tasks/{args.id}/signals/{args.signal}")
        print(json.dumps(answer, indent=2) if args.json else "sent")
        return EXIT_OK
    params = [("limit", str(args.limit)), ("order", "oldest" if args.oldest else "newest")]
    params += [("status", s) for s in args.status]
    if args.user is not None:
        params.append(("user", str(args.user)))
    page = call(base, "GET", "/api/v2/tasks?" + urllib.parse.urlencode(params))
    if args.json:
        print(json.dumps(page, indent=2))
    else:
        for t in page["data"]:
            print(f"{t['id']:<40} {t['status']:<14} user {t['user']:<10} {t['add_time']}")
    return EXIT_OK
