"""Problem packages the tests build themselves: Khala's layout (problem.toml) and Polygon's
(problem.xml), as zips in memory or on disk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

AB_TOML = """
title = "A plus B"
[limits]
time = 2.0
memory = "256M"
output = "1M"
[limits.time_factors]
python3 = 2.0
[compare]
mode = "tokens"
"""

# A C++ checker in the testlib style (no testlib): reads input, output, answer by their paths.
TOKEN_CHECKER = r"""
#include <fstream>
#include <string>
int main(int argc, char** argv) {
    std::ifstream out(argv[2]), ans(argv[3]);
    std::string a, b;
    while (ans >> a) { if (!(out >> b) || a != b) return 1; }
    if (out >> b) return 1;
    return 0;
}
"""

SOLUTIONS = {
    "right": ("python3", "main.py", "a, b = map(int, input().split())\nprint(a + b)\n"),
    "wrong": ("python3", "main.py", "a, b = map(int, input().split())\nprint(a - b)\n"),
    "c": ("c", "main.c", "#include <stdio.h>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);"
                         "printf(\"%ld\\n\",a+b);return 0;}\n"),
}


def ab_cases(count: int = 3) -> dict[str, bytes]:
    files = {}
    for i in range(1, count + 1):
        files[f"tests/{i:02d}.in"] = f"{i} {i * 10}\n".encode()
        files[f"tests/{i:02d}.ans"] = f"{i * 11}\n".encode()
    return files


def ab_package(count: int = 3, toml: str = AB_TOML, extra: dict[str, bytes] | None = None
               ) -> dict[str, bytes]:
    return {"problem.toml": toml.encode(), **ab_cases(count), **(extra or {})}


def zipped(files: dict[str, bytes], top: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(top + name, data)
    return buffer.getvalue()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root
