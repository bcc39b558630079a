"""Language presets: the table of languages Khala knows, and how one fills a task. Pure.

A preset names the file the program must be in, the host tools it needs, the compile and run
commands (with `{tool}` placeholders that the executor replaces by the absolute paths it
detected, so nothing depends on the sandbox's PATH), the compile step's declared outputs (the
only files the compile cache keeps and the cases see) and how to ask each tool for its version.
Which presets a host really has is detected by the executor (khala/executor/languages.py).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MAX_VERSION = 200  # characters of a version string kept
LANGUAGE_PATTERN = r"^[a-z][a-z0-9_+-]{0,31}$"  # a preset's name, the host's or an image's
LANGUAGE_RE = re.compile(LANGUAGE_PATTERN)


@dataclass(frozen=True)
class Preset:
    name: str
    source: str  # the program's file name in the source zip (or the checker's file)
    compile: str  # command template; {tool} = the tool's absolute path
    run: str  # command template
    outputs: tuple[str, ...]  # declared outputs: top-level file names or glob patterns
    tools: tuple[str, ...]  # tools needed; the first one's version is the preset's
    version_args: tuple[str, ...] = ("--version",)
    search: tuple[str, ...] = ()  # directories besides PATH where the tools may live
    # A file beside the first tool (relative to its directory) holding KEY="version": read
    # instead of running the tool when present (a JVM takes seconds of CPU to say its version).
    version_file: tuple[str, str] = ("", "")
    # The case's CPU and wall limits are multiplied by it (a JVM's start, an interpreter).
    time_factor: float = 1.0


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("c", "main.c", "{gcc} -std=gnu17 -O2 -pipe -o main main.c -lm", "./main",
           ("main",), ("gcc",)),
    Preset("cpp", "main.cpp", "{g++} -std=gnu++17 -O2 -pipe -o main main.cpp", "./main",
           ("main",), ("g++",)),
    Preset("python3", "main.py",
           "{python3} -c 'import sys; compile(open(\"main.py\", \"rb\").read(), \"main.py\", "
           "\"exec\")'",
           "{python3} main.py", ("main.py",), ("python3",)),
    Preset("java", "Main.java", "{javac} -encoding UTF-8 -J-Xmx256m Main.java",
           "{java} -Xss64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 Main", ("*.class",),
           ("javac", "java"), version_args=("-version",),
           version_file=("../release", "JAVA_VERSION")),
    Preset("go", "main.go",
           # the build cache and temp files in the work area: /tmp is too small for the link
           "mkdir -p .go/cache .go/tmp && GOCACHE=$PWD/.go/cache GOTMPDIR=$PWD/.go/tmp "
           "GOPATH=$PWD/.go GO111MODULE=off {go} build -o main main.go",
           "./main", ("main",), ("go",), version_args=("version",),
           search=("/usr/local/go/bin", "/usr/lib/go/bin")),
    Preset("rust", "main.rs", "{rustc} -O -o main main.rs", "./main", ("main",), ("rustc",)),
)}


@dataclass(frozen=True)
class HostLanguage:
    """A preset as one host has it: its version string and each tool's absolute path."""

    preset: Preset
    version: str
    tools: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.preset.name

    def _fill(self, template: str) -> str:
        for tool, path in self.tools.items():
            template = template.replace("{" + tool + "}", shlex.quote(path))
        return template

    @property
    def compile_command(self) -> str:
        return self._fill(self.preset.compile)

    @property
    def run_command(self) -> str:
        return self._fill(self.preset.run)


def known(name: str) -> bool:
    return name in PRESETS


def release_value(text: str, key: str) -> str:
    """The value of `key` in a KEY="value" file (a JDK's `release`), or ""."""
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip().strip('"')[:MAX_VERSION]
    return ""


def version_line(output: str) -> str:
    """A tool's version string: the first non-empty line of what it printed, bounded."""
    for line in output.splitlines():
        if line.strip():
            return line.strip()[:MAX_VERSION]
    return ""
