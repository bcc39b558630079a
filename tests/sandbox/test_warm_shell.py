"""The stem's step script (khala/sandbox/warm_shell.py): pure, checked by running it in the
host's own /bin/sh (no sandbox): what a step would see."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile

import pytest

from khala.sandbox.warm.shell import step_script

pytestmark = pytest.mark.integration  # runs the host's /bin/sh

LIMITS = [(resource.RLIMIT_NOFILE, 64), (resource.RLIMIT_STACK, 8 * 1024 * 1024),
          (resource.RLIMIT_FSIZE, 1024 * 1024), (resource.RLIMIT_CORE, 0)]


def run(script: str, workdir: str) -> subprocess.CompletedProcess[str]:
    """Run `script` as the stem's shell does, with /work replaced by `workdir`."""
    text = script.replace("/work", workdir)
    return subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True, env={},
                          timeout=10, check=False)


def test_exact_environment_limits_cwd_and_stdin() -> None:
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "in.txt"), "w") as fh:
            fh.write("given input\n")
        argv = ["sh", "-c", "env | sort; ulimit -n; ulimit -s; ulimit -f; pwd; cat; echo \"$1\"",
                "x", "it's $HOME; `rm -rf /` \"quoted\""]
        env = {"PATH": "/usr/bin:/bin", "A_B": "two words", "Q": "'\"$(x)\\"}
        script = step_script(argv, env, LIMITS, "/work/in.txt")
        assert script is not None
        done = run(script, work)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # exactly the given environment (the inner sh adds only PWD of its own)
    assert [x for x in lines if "=" in x and not x.startswith("PWD=")] == [
        "A_B=two words", "PATH=/usr/bin:/bin", "Q='\"$(x)\\"]
    assert lines[-6:] == ["64", "8192", "2048", work, "given input",
                          "it's $HOME; `rm -rf /` \"quoted\""]


def test_no_stdin_is_dev_null_and_live_input_keeps_fd_0() -> None:
    script = step_script(["cat"], {"PATH": "/usr/bin:/bin"}, [], "")
    assert script is not None and "exec 0</dev/null" in script
    live = step_script(["cat"], {"PATH": "/usr/bin:/bin"}, [], None)
    assert live is not None and "exec 0<" not in live


def test_a_missing_command_ends_with_127_and_a_message() -> None:
    with tempfile.TemporaryDirectory() as work:
        for command, why in (("no-such-compiler", "command not found"),
                             ("./a.out", "No such file or directory")):
            script = step_script([command], {"PATH": "/usr/bin:/bin"}, [], "")
            assert script is not None
            done = run(script, work)
            assert done.returncode == 127
            assert done.stderr == f"khala: cannot run {command}: {why}\n"


def test_what_the_shell_cannot_express_is_refused() -> None:
    env = {"PATH": "/bin"}
    assert step_script([], env, [], "") is None
    assert step_script(["-x"], env, [], "") is None
    assert step_script(["true"], {"NOT-A-NAME": "1"}, [], "") is None
    assert step_script(["true", "a\0b"], env, [], "") is None
    assert step_script(["true"], {"A": "a\0b"}, [], "") is None
    assert step_script(["true"], env, [(resource.RLIMIT_FSIZE, 1000)], "") is None  # not ×512
    assert step_script(["true"], env, [(resource.RLIMIT_AS, 1 << 30)], "") is None  # no flag
    assert step_script(["true", "x" * 70_000], env, [], "") is None  # over one pipe buffer
    assert step_script(["true"], env, [(resource.RLIMIT_CPU, 3)], "") is not None
