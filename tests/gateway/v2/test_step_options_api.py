"""A step's options through API v2 and a real cluster (gateway → judicator → executor, the
executor's sandbox as tests/fixtures/cluster.py picks it): the program sees its environment
and working directory and runs under its CPU rate; a bad variable name, a working
directory outside the work area and one with a language preset answer 422 naming the field.

That the rate is the kernel's quota (the cgroup throttled the step) is proven on the sandbox
itself (tests/sandbox/test_step_options.py); here it must reach the executor and hold there."""

from __future__ import annotations

from typing import Any

from tests.fixtures.servers import missing
from tests.gateway.v2.test_api import assert_error, body, get, post, wait_done

RATE = 0.1
# Two processes, each until it has used 0.15 s of CPU (work in CPU time: a loaded machine slows
# it, never shortens it), then the environment and the working directory as the step sees them.
PROGRAM = ("for n in 1 2; do python3 -S -c 'import time\n"
           "while time.process_time() < 0.15: pass' & done; wait; "
           "pwd; printf '%s|%s\\n' \"$GREETING\" \"$EMPTY\"; ls -d /work/out/deep")


def test_the_program_sees_its_env_and_workdir_and_runs_under_its_cpu_rate(
        cluster: Any) -> None:
    if cluster.sandbox != "bwrap":
        missing("step options with a CPU rate need the bwrap sandbox")
    execute = {"command": PROGRAM, "timeout": 60, "env": {"GREETING": "hello there",
                                                            "EMPTY": ""},
               "workdir": "out/deep", "cpu_rate": RATE}
    reply = post(cluster, "/api/v2/tasks", body(execute=execute))
    assert reply.status_code == 201, reply.text
    shown = reply.json()["data"]["execute"]
    assert (shown["env"], shown["workdir"], shown["cpu_rate"]) == (
        execute["env"], "out/deep", RATE)
    task_id = reply.json()["data"]["id"]
    step = wait_done(cluster, task_id, seconds=60)["result"]["execute"]
    stdout, stderr = (get(cluster, f"/api/v2/tasks/{task_id}/outputs/execute/{name}").text
                      for name in ("stdout", "stderr"))
    assert step["reason"] == "ok", (step, stderr)
    assert stdout == "/work/out/deep\nhello there|\n/work/out/deep\n", (stdout, stderr)
    cpu = step["rusage"]["cpu_time"]
    assert cpu >= 0.3, step  # both processes did their work
    assert cpu / step["wall_time"] <= RATE * 1.6, step


def test_a_bad_env_name_and_a_workdir_outside_the_work_area_or_with_a_preset_answer_422(
        cluster: Any) -> None:
    for changes, field in (({"execute": {"env": {"1BAD": "x"}}}, "execute.env.1BAD"),
                           ({"compile": {"env": {"A-B": "x"}}}, "compile.env.A-B"),
                           ({"execute": {"workdir": "../outside"}}, "execute.workdir"),
                           ({"compile": {"workdir": "/etc"}}, "compile.workdir"),
                           ({"compile": {"command": "", "language": "c"},
                             "execute": {"command": "", "workdir": "src"}},
                            "execute.workdir: the c preset")):
        error = assert_error(post(cluster, "/api/v2/tasks", body(**changes)), 422)
        assert error["detail"].startswith(field), (field, error)
