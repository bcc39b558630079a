"""An image recipe (docs/images.md, "Recipes"): a small TOML file naming the Debian packages of
an image, the commands that prepare it (warm build caches) and its language presets; and the
presets file an image built from it carries (`/etc/khala/languages.json`), which executors read
instead of probing their host. Pure, except reading the files named.

A recipe:

    name = "judge"
    suite = "bookworm"
    packages = ["gcc", "g++"]
    setup = ["mkdir -p /opt/khala"]          # shell commands run in the new root, in order

    [[language]]
    name = "c"
    source = "main.c"
    compile = "gcc -O2 -o main main.c -lm"
    run = "./main"
    outputs = ["main"]
    version = "gcc --version"               # its first line becomes the version string
    time_factor = 1.0                       # the case's CPU and wall limits are multiplied
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from khala.errors import InvalidInput
from khala.images.model import check_image_name
from khala.judging.presets import LANGUAGE_RE, MAX_VERSION, Preset

#: Where an image keeps its presets, relative to its root.
PRESETS_PATH = "etc/khala/languages.json"
PRESETS_FORMAT = 1
SOURCE_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
PACKAGE_RE = re.compile(r"\A[a-z0-9][a-z0-9.+-]{0,99}\Z")
SUITE_RE = re.compile(r"\A[a-z][a-z0-9-]{0,31}\Z")
MAX_FACTOR = 20.0
MAX_COMMAND = 4096
MAX_LANGUAGES = 200


@dataclass(frozen=True)
class RecipeLanguage:
    """One language preset of a recipe: commands run by /bin/sh in the step's work dir."""

    name: str
    source: str
    compile: str
    run: str
    outputs: tuple[str, ...]
    version: str  # the command whose output's first line is the version string
    time_factor: float = 1.0


@dataclass(frozen=True)
class Recipe:
    name: str
    suite: str = "bookworm"
    packages: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    languages: tuple[RecipeLanguage, ...] = field(default_factory=tuple)


def load_recipe(path: str) -> Recipe:
    """The recipe in the TOML file `path`; InvalidInput saying what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise InvalidInput(f"recipe {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"recipe {path}: not TOML: {exc}") from exc
    try:
        return parse_recipe(doc)
    except InvalidInput as exc:
        raise InvalidInput(f"recipe {path}: {exc}") from exc


def parse_recipe(doc: dict[str, Any]) -> Recipe:
    unknown = set(doc) - {"name", "suite", "packages", "setup", "language"}
    if unknown:
        raise InvalidInput(f"unknown key(s) {sorted(unknown)}")
    name = check_image_name(doc.get("name"))
    suite = doc.get("suite", "bookworm")
    if not isinstance(suite, str) or not SUITE_RE.match(suite):
        raise InvalidInput(f"suite {suite!r} is not a Debian suite name")
    packages = _strings(doc.get("packages", []), "packages", 1000)
    bad = [p for p in packages if not PACKAGE_RE.match(p)]
    if bad:
        raise InvalidInput(f"packages: {bad[:5]} are not Debian package names")
    setup = _strings(doc.get("setup", []), "setup", 100)
    raw = doc.get("language", [])
    if not isinstance(raw, list) or len(raw) > MAX_LANGUAGES:
        raise InvalidInput(f"[[language]] tables: at most {MAX_LANGUAGES}")
    languages = tuple(_language(x, i) for i, x in enumerate(raw))
    names = [x.name for x in languages]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"language(s) {twice} given twice")
    return Recipe(name, suite, tuple(packages), tuple(setup), languages)


def _strings(value: object, what: str, most: int) -> list[str]:
    if not isinstance(value, list) or len(value) > most or not all(
            isinstance(x, str) and 0 < len(x) <= MAX_COMMAND for x in value):
        raise InvalidInput(f"{what} is a list of at most {most} non-empty strings")
    return list(value)


def _language(raw: object, index: int) -> RecipeLanguage:
    where = f"language #{index + 1}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} is not a table")
    unknown = set(raw) - {"name", "source", "compile", "run", "outputs", "version",
                          "time_factor"}
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not LANGUAGE_RE.fullmatch(name):
        raise InvalidInput(f"{where}: name is 1..32 of a-z 0-9 _ + -, starting with a letter")
    where = f"language {name}"
    source = raw.get("source")
    if not isinstance(source, str) or not SOURCE_RE.match(source):
        raise InvalidInput(f"{where}: source is a plain file name")
    commands = {}
    for key in ("compile", "run", "version"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_COMMAND:
            raise InvalidInput(f"{where}: {key} is a non-empty command")
        commands[key] = value
    outputs = _strings(raw.get("outputs"), f"{where}: outputs", 20)
    if not outputs:
        raise InvalidInput(f"{where}: outputs names the files the run needs (one at least)")
    factor = raw.get("time_factor", 1.0)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (
            0 < factor <= MAX_FACTOR):
        raise InvalidInput(f"{where}: time_factor is a number in (0, {MAX_FACTOR:g}]")
    return RecipeLanguage(name, source, commands["compile"], commands["run"], tuple(outputs),
                          commands["version"], float(factor))


# ---------------------------------------------------------------------- the image's presets

def presets_document(languages: tuple[RecipeLanguage, ...], versions: dict[str, str]
                     ) -> dict[str, Any]:
    """What an image carries at PRESETS_PATH: each language with the version it answered when
    the image was built (an image never changes, so neither does the version)."""
    return {"format": PRESETS_FORMAT, "languages": [
        {"name": x.name, "source": x.source, "compile": x.compile, "run": x.run,
         "outputs": list(x.outputs), "version": versions[x.name][:MAX_VERSION],
         "time_factor": x.time_factor} for x in languages]}


@dataclass(frozen=True)
class ImagePreset:
    """A language as an image has it: its preset (commands as they are: the image's PATH finds
    its tools) and the version recorded when the image was built."""

    preset: Preset
    version: str


def read_image_presets(root: str) -> dict[str, ImagePreset]:
    """The presets the unpacked image at `root` carries, by name; {} when it carries none.
    InvalidInput for a presets file that is not as an image build writes it."""
    path = os.path.join(root, PRESETS_PATH)
    if os.path.islink(path):
        raise InvalidInput(f"{PRESETS_PATH} is a symbolic link")
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(1 << 20))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{PRESETS_PATH} cannot be read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != PRESETS_FORMAT:
        raise InvalidInput(f"{PRESETS_PATH}: not format {PRESETS_FORMAT}")
    found: dict[str, ImagePreset] = {}
    for raw in doc.get("languages") or []:
        if not isinstance(raw, dict):
            raise InvalidInput(f"{PRESETS_PATH}: a language is not an object")
        version = raw.get("version")
        entry = {k: v for k, v in raw.items() if k != "version"}
        x = _language({**entry, "version": "-"}, len(found))
        if not isinstance(version, str):
            raise InvalidInput(f"{PRESETS_PATH}: language {x.name} has no version")
        preset = Preset(x.name, x.source, x.compile, x.run, x.outputs, (),
                        time_factor=x.time_factor)
        found[x.name] = ImagePreset(preset, version[:MAX_VERSION])
    return found
