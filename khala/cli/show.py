"""How `khala submit` and `khala get` print a task for people: a verdict line and a table of
the cases (judged tasks), or the status and step reports. Pure: text in, text out."""

from __future__ import annotations

from typing import Any

VERDICT_WORDS = {
    "accepted": "Accepted", "wrong_answer": "Wrong answer", "time_limit": "Time limit exceeded",
    "memory_limit": "Memory limit exceeded", "output_limit": "Output limit exceeded",
    "runtime_error": "Runtime error", "compile_error": "Compile error",
    "internal_error": "Internal error", "skipped": "Skipped",
}
PER_CASE = {"wrong_answer", "time_limit", "memory_limit", "output_limit", "runtime_error"}


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def size(value: int | None) -> str:
    if value is None:
        return "-"
    if value >= 1024**2:
        return f"{value / 1024**2:.1f} MiB"
    return f"{value / 1024:.0f} KiB" if value >= 1024 else f"{value} B"


def verdict_line(judgement: dict[str, Any]) -> str:
    """"Wrong answer on case 2" (the first failed case), "Accepted", "Compile error"…"""
    verdict = judgement["verdict"]
    words = VERDICT_WORDS.get(verdict, verdict)
    if verdict in PER_CASE:
        for number, case in enumerate(judgement["cases"], 1):
            if case["verdict"] not in ("accepted", "skipped"):
                return f"{words} on case {number}"
    return words


def judgement_text(task: dict[str, Any]) -> str:
    """The verdict, score, time and memory, then one row per case."""
    j = task["result"]["judgement"]
    ran = [c for c in j["cases"] if c["verdict"] != "skipped"]
    time = max((c["time"] for c in ran), default=None)
    memory = max((c["memory"] for c in ran), default=None)
    lines = [f"{task['id']}  {verdict_line(j)}",
             f"score {j['score']}/{j['max_score']}  time {seconds(time)}  memory {size(memory)}"
             f"  {task['compile'].get('language') or ''} {j.get('language') or ''}".rstrip()]
    if j.get("message"):
        lines.append(j["message"].rstrip())
    rows = [("case", "verdict", "time", "memory", "message")]
    for number, c in enumerate(j["cases"], 1):
        skipped = c["verdict"] == "skipped"
        rows.append((str(number), VERDICT_WORDS.get(c["verdict"], c["verdict"]),
                     "-" if skipped else seconds(c["time"]), "-" if skipped else size(c["memory"]),
                     (c.get("message") or "").splitlines()[0] if c.get("message") else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)


def status_text(task: dict[str, Any]) -> str:
    """A command task: its status and each step's reason and usage."""
    lines = [f"{task['id']}  {task['status']}  user {task['user']}  added {task['add_time']}"]
    for step in ("compile", "execute"):
        result = (task.get("result") or {}).get(step)
        if result:
            lines.append(f"[{step}] reason {result['reason']}, wall {result['wall_time']:.3f}s, "
                         f"cpu {seconds(result['rusage']['cpu_time'])}, "
                         f"memory {size(result['rusage']['maxrss'])}")
    return "\n".join(lines)


def is_judged(task: dict[str, Any]) -> bool:
    return bool((task.get("result") or {}).get("judgement"))


def passed(task: dict[str, Any]) -> bool:
    """Accepted (judged), else Success."""
    if is_judged(task):
        return bool(task["result"]["judgement"]["verdict"] == "accepted")
    return bool(task["status"] == "success")
