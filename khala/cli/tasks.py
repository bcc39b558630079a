"""`khala submit|get|tasks|cancel|signal`: API v2 from the command line, for people.

Talks to a gateway at --url or $KHALA_URL (default http://127.0.0.1:7000) with the standard
library only. `submit --language` judges a program on test cases (khala/cli/judge.py), shows
its output live (the event stream, khala/cli/events.py) and a verdict table at the end
(khala/cli/show.py). Exit codes: 0 accepted (a command task: success), 1 any other verdict or
end, 2 usage or input errors, 3 the API answered an error, 4 the gateway could not be reached.
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

from khala.cli import events
from khala.cli.judge import (
    UsageError,
    cases_from_args,
    cases_from_dir,
    judged_body,
    parse_seconds,
    parse_size,
)
from khala.cli.show import is_judged, judgement_text, passed, status_text

DEFAULT_URL = "http://127.0.0.1:7000"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_API, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
WAIT_STEP = 10.0  # seconds of each ?wait= call while --wait shows progress
MAX_WAIT_CALLS = 100_000  # bound of the --wait loop (over 11 days of 10 s calls)


class ApiFailure(Exception):
    def __init__(self, code: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after  # a 429's Retry-After: ask again after it


def key_headers() -> dict[str, str]:
    """The API key of $KHALA_KEY (docs/security.md), if any."""
    if os.environ.get("KHALA_KEY"):
        return {"Authorization": "Bearer " + os.environ["KHALA_KEY"]}
    return {}


def request(base: str, method: str, path: str, body: Any = None,
            timeout: float = 90.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **key_headers()}
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
    """The API v2 body the command line asks for: judged with --language, else commands. The
    user is sent only when given (--user): with an API key, the key's own user is used."""
    time = parse_seconds(args.time) if args.time else None
    memory = parse_size(args.memory) if args.memory else None
    if args.language:
        if args.execute:
            raise UsageError("--execute is for command tasks; --language judges the program")
        cases = cases_from_args(args.case) + (cases_from_dir(args.cases) if args.cases else [])
        body = judged_body(args.language, read_files(args.files), cases, time, memory,
                           args.compare)
    else:
        if not args.execute:
            raise UsageError("give --language (judge a program) or --execute COMMAND")
        stdin = ""
        if args.input_file:
            with open(args.input_file, encoding="utf-8") as fh:
                stdin = fh.read()
        execute: dict[str, Any] = {"command": args.execute, "input": stdin,
                                   "files": read_files(args.data)}
        if time is not None or args.timeout is not None:
            execute["timeout"] = time if time is not None else parse_seconds(args.timeout)
        if memory is not None:
            execute["memory_limit"] = memory
        body = {"compile": {"command": args.compile, "timeout": args.compile_timeout,
                            "files": read_files(args.files)}, "execute": execute}
    if args.user is not None:
        body["user"] = args.user
    return body


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


def watch(base: str, task_id: str, quiet: bool) -> dict[str, Any]:
    """The task once done: its event stream shows the output live on stderr (unless `quiet`);
    when the stream cannot be had, waiting with ?wait= instead."""
    def output(stream: str, text: str) -> None:
        if not quiet:
            sys.stderr.write(text)
            sys.stderr.flush()

    def status(name: str) -> None:
        if not quiet:
            print(f"[{name}]", file=sys.stderr, flush=True)

    url = f"{base.rstrip('/')}/api/v2/tasks/{task_id}/events"
    final = events.follow(url, key_headers(), output, status)
    return final if final is not None else wait_for(base, task_id, quiet)


def show(base: str, task: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(task, indent=2))
    elif task["done"] and is_judged(task):
        print(judgement_text(task))
        if task["result"]["judgement"]["verdict"] == "compile_error":
            _, raw = request(base, "GET", f"/api/v2/tasks/{task['id']}/outputs/compile/stderr")
            sys.stderr.buffer.write(raw)
            sys.stderr.flush()
    else:
        print(status_text(task))
        for step in ("compile", "execute"):
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
    return EXIT_OK if passed(task) else EXIT_FAILED


def build(sub: Any) -> None:
    """Add the API v2 commands to the `khala` parser's subcommands."""
    def common(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--url", default=os.environ.get("KHALA_URL", DEFAULT_URL),
                         help="gateway URL (default $KHALA_URL or %(default)s)")
        cmd.add_argument("--json", action="store_true", help="print JSON")

    cmd = sub.add_parser(
        "submit", help="judge a program (--language) or run commands (--execute) (API v2)",
        description="Judge: khala submit main.c --language c --cases tests/ --time 1.5 "
        "--memory 256M. Commands: khala submit src/ --compile 'make' --execute ./main --wait.")
    common(cmd)
    cmd.add_argument("files", nargs="*", help="source files or directories")
    cmd.add_argument("--language", help="judge the program with this preset (khala languages: "
                     "GET /api/v2/languages); waits and prints the verdict")
    cmd.add_argument("--case", action="append", default=[], metavar="IN:OUT",
                     help="a test case: its input file and expected-output file (repeat)")
    cmd.add_argument("--cases", metavar="DIR", help="test cases: DIR's N.in and N.out files")
    cmd.add_argument("--time", help="time limit in seconds (1.5 allowed): CPU seconds per "
                     "case when judging (wall: twice that plus 1 s), else the wall limit")
    cmd.add_argument("--memory", help="memory limit: 256M, 1G, 65536K or bytes")
    cmd.add_argument("--compare", default="lines",
                     choices=["lines", "tokens", "exact", "float"], help="output comparison")
    cmd.add_argument("--no-wait", action="store_true", help="judging: print the id, do not "
                     "wait")
    cmd.add_argument("--compile", default="true", help="compile command (default: true)")
    cmd.add_argument("--execute", help="execute command (a command task)")
    cmd.add_argument("--data", action="append", default=[], help="data file or directory")
    cmd.add_argument("--input-file", help="file fed to the execute step's stdin")
    cmd.add_argument("--id", help="a client-chosen id (idempotent)")
    cmd.add_argument("--user", type=int, default=None,
                     help="the task's user (default: the API key's, else 0)")
    cmd.add_argument("--timeout", help="execute wall seconds of a command task (as --time)")
    cmd.add_argument("--compile-timeout", type=float, default=60)
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
    except UsageError as exc:
        print(f"khala {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"khala {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    base = args.url
    if args.command == "submit":
        path = f"/api/v2/tasks/{args.id}" if args.id else "/api/v2/tasks"
        task = call(base, "POST", path, task_body(args))["data"]
        if args.wait or (args.language and not args.no_wait):
            task = watch(base, task["id"], args.json)
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
