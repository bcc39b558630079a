"""Which run commands a judged case executes without bash (khala/rules/commands.py): the
rule, and bash itself agreeing on every command the rule lets through."""

from __future__ import annotations

import random
import subprocess

import pytest

from khala.rules.commands import BASH_NAMES, direct_argv

DIRECT = {
    "./main": ["./main"],
    "  ./main  ": ["./main"],
    "/usr/bin/python3 main.py": ["/usr/bin/python3", "main.py"],
    "java -Xss64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -jar main.jar":
        ["java", "-Xss64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-jar", "main.jar"],
    "mono main.exe": ["mono", "main.exe"],
    "./a.out 1,2 x=y @z %q": ["./a.out", "1,2", "x=y", "@z", "%q"],
}

NEEDS_BASH = [
    "", "   ", "true", "exit 3", "echo hi", "cd out && ./main", "time ./main", "[ -x main ]",
    "A=1 ./main", "./main > out.txt", "./main < in", "./a | ./b", "./a; ./b", "./main &",
    "./main $HOME", "./main ${X}", "./main `id`", "./main $(id)", "./main *", "./main ?",
    "./main [ab]", "~/main", "./main ~", "./main {a,b}", "./main 'x'", './main "x"',
    "./main \\x", "./main # note", "./main\n./other", "./main\targ", "-x", "./main\r",
    "! ./main", "{ ./main; }", "(./main)", "./main !x",
]


@pytest.mark.parametrize("command", list(DIRECT))
def test_plain_words_run_directly(command: str) -> None:
    assert direct_argv(command) == DIRECT[command]


@pytest.mark.parametrize("command", NEEDS_BASH)
def test_anything_a_shell_would_read_otherwise_needs_bash(command: str) -> None:
    assert direct_argv(command) is None


def test_an_environment_bash_reads_at_start_keeps_the_command_in_bash() -> None:
    assert direct_argv("./main", ["HOME", "BASH_ENV"]) is None
    assert direct_argv("./main", ["SHELLOPTS"]) is None
    assert direct_argv("./main", ["BASHOPTS"]) is None
    assert direct_argv("./main", ["HOME", "GREETING"]) == ["./main"]


@pytest.mark.integration  # bash itself
def test_every_bash_builtin_and_keyword_needs_bash() -> None:
    listed = subprocess.run(["bash", "-c", "compgen -b; compgen -k"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert set(listed) <= BASH_NAMES, set(listed) - BASH_NAMES
    for name in listed:
        assert direct_argv(f"{name} x") is None, name


def bash_words(command: str) -> list[str]:
    """The words bash makes of `command` (as the arguments of `set --`: the same expansion
    as a simple command's words)."""
    out = subprocess.run(["bash", "-c", f"set -- {command}\nfor w; do printf '%s\\0' \"$w\"; done"],
                         capture_output=True, check=False, cwd="/", env={"HOME": "/home/x"})
    return out.stdout.decode().split("\0")[:-1]


@pytest.mark.integration  # bash itself
def test_bash_makes_the_same_words_of_every_command_let_through() -> None:
    """Random commands over an alphabet full of shell syntax: each one the rule runs
    directly is split by bash into exactly the same words."""
    rng = random.Random(20261206)
    alphabet = "ab./-_=+,:@%~*?[]{}$'\"\\;&|<>()#! \t"
    through = 0
    for _ in range(3000):
        command = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        words = direct_argv("./p " + command)
        if words is None:
            continue
        through += 1
        assert bash_words(command) == words[1:], command
    assert through > 50, through  # the check saw enough commands it lets through
