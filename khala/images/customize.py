"""The last step of building an image from a recipe, run by mmdebstrap as a customize hook
(`python -m khala.images.customize RECIPE ROOT`) while the new root filesystem is a directory
on this machine with its packages installed: the recipe's setup commands run in it (chroot, as
root: they warm build caches), each language is asked its version there, and the presets file
(khala/images/recipe.py, PRESETS_PATH) is written into it. Any failure ends the build: an
image whose presets name a tool it lacks is never made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from khala.errors import InvalidInput
from khala.images.recipe import PRESETS_PATH, Recipe, load_recipe, presets_document
from khala.judging.presets import version_line

STEP_SECONDS = 1800
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}


def in_root(root: str, command: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", root, "/bin/sh", "-ec", command], env=ENV, text=True,
                          capture_output=capture, errors="replace", timeout=STEP_SECONDS,
                          check=False, cwd="/")


def customize(recipe: Recipe, root: str) -> dict[str, str]:
    """Run the setup commands, probe the versions and write the presets; the versions."""
    for command in recipe.setup:
        print(f"khala image: setup: {command}", file=sys.stderr, flush=True)
        done = in_root(root, command)
        if done.returncode != 0:
            raise InvalidInput(f"setup command failed (exit {done.returncode}): {command}")
    versions: dict[str, str] = {}
    for language in recipe.languages:
        done = in_root(root, language.version, capture=True)
        found = version_line(done.stdout) or version_line(done.stderr)
        if done.returncode != 0 or not found:
            raise InvalidInput(f"language {language.name}: `{language.version}` failed (exit "
                               f"{done.returncode}): {(done.stderr or done.stdout)[-500:]}")
        versions[language.name] = found
        print(f"khala image: {language.name}: {found}", file=sys.stderr, flush=True)
    path = os.path.join(root, PRESETS_PATH)
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(presets_document(recipe.languages, versions), fh, indent=1)
        fh.write("\n")
    os.chmod(path, 0o644)
    return versions


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m khala.images.customize RECIPE ROOT", file=sys.stderr)
        return 2
    try:
        customize(load_recipe(argv[0]), argv[1])
    except (InvalidInput, OSError, subprocess.SubprocessError) as exc:
        print(f"khala image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
