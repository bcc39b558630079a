"""Whether a step's command needs a shell. Pure.

A judged case runs its language's run command (`./main`, `python3 main.py`, `java … Main`)
once per case. Through `bash execute.sh` that costs a bash start-up per case, about 2 ms here,
more than the program itself. A command that is a plain list of words, none of which a shell
would expand or treat specially, means the same executed directly: `direct_argv` gives its
argv, or None when the command needs bash (quotes, variables, globs, redirections, several
commands, an assignment, a builtin or keyword of bash as the first word, an environment
variable bash itself reads at start).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Words made only of these mean themselves to bash: no quoting, expansion, globbing,
#: redirection, separation or comment (`#` starts one only at a word's start, `~` expands
#: there, `{}` brace-expand: all left out).
PLAIN_WORD = re.compile(r"[A-Za-z0-9_./+,=:@%-]+\Z")

#: Bash's builtins and keywords (`compgen -b`, `compgen -k` of bash 5.2): such a first word
#: is not an executable's name, or is not run as one.
BASH_NAMES = frozenset({
    ".", ":", "[", "alias", "bg", "bind", "break", "builtin", "caller", "cd", "command",
    "compgen", "complete", "compopt", "continue", "declare", "dirs", "disown", "echo",
    "enable", "eval", "exec", "exit", "export", "false", "fc", "fg", "getopts", "hash", "help",
    "history", "jobs", "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd",
    "pwd", "read", "readarray", "readonly", "return", "set", "shift", "shopt", "source",
    "suspend", "test", "times", "trap", "true", "type", "typeset", "ulimit", "umask",
    "unalias", "unset", "wait", "if", "then", "else", "elif", "fi", "case", "esac", "for",
    "select", "while", "until", "do", "done", "in", "function", "time", "{", "}", "!", "[[",
    "]]", "coproc",
})


def direct_argv(command: str, env: Iterable[str] = ()) -> list[str] | None:
    """The argv that runs `command` without a shell, or None when only bash runs it as
    written. `env`: the names of the step's environment; one that bash reads itself at
    start (BASH_ENV names a file it sources first, SHELLOPTS/BASHOPTS set its options) keeps
    the command in bash."""
    if any(name.startswith("BASH") or name == "SHELLOPTS" for name in env):
        return None
    words = [word for word in command.strip(" \n").split(" ") if word]
    if not words or not all(PLAIN_WORD.match(word) for word in words):
        return None
    first = words[0]
    if first in BASH_NAMES or "=" in first or first.startswith("-"):
        return None
    return words
