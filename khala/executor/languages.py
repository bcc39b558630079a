"""Which language presets this host really has: each tool looked up on the sandbox's PATH (and
the preset's extra directories), resolved to its real path — which must lie where the sandbox
mirrors the host (/usr, /bin, …) — and asked for its version."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from khala.errors import ConfigError
from khala.judging.presets import PRESETS, HostLanguage, Preset, release_value, version_line
from khala.sandbox.core import DEFAULT_PATH

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 20.0  # seconds a version probe may take (a cold JVM is slow)
# Host trees every sandbox backend shows (bwrap mirrors these read-only; `none` shows all).
VISIBLE_ROOTS = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/")


def wanted(setting: str) -> list[Preset]:
    """The presets the `languages` setting asks for; ConfigError names an unknown one."""
    if setting.strip() in ("", "auto"):
        return list(PRESETS.values())
    names = [n.strip() for n in setting.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ConfigError(f"languages: unknown preset(s) {unknown}; known: {sorted(PRESETS)}")
    return [PRESETS[n] for n in names]


def find_tool(tool: str, search: tuple[str, ...]) -> str | None:
    """The real path of `tool` if it is visible inside the sandbox, else None."""
    path = shutil.which(tool, path=os.pathsep.join((DEFAULT_PATH, *search)))
    if path is None:
        return None
    real = os.path.realpath(path)
    return real if real.startswith(VISIBLE_ROOTS) and os.access(real, os.X_OK) else None


def _recorded_version(preset: Preset, tool: str) -> str:
    """The version a file beside the tool records (preset.version_file), or ""."""
    name, key = preset.version_file
    if not name:
        return ""
    try:
        with open(os.path.join(os.path.dirname(tool), name), encoding="utf-8") as fh:
            value = release_value(fh.read(), key)
    except OSError:
        return ""
    return f"{os.path.basename(tool)} {value}" if value else ""


def probe(preset: Preset) -> HostLanguage | None:
    """The preset as this host has it, or None when a tool is missing or will not run."""
    tools: dict[str, str] = {}
    for tool in preset.tools:
        found = find_tool(tool, preset.search)
        if found is None:
            return None
        tools[tool] = found
    first = tools[preset.tools[0]]
    recorded = _recorded_version(preset, first)
    if recorded:
        return HostLanguage(preset, recorded, tools)
    try:
        done = subprocess.run([first, *preset.version_args], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, errors="replace", check=False,
                              env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", "HOME": "/tmp"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("language %s: %s does not answer its version: %s", preset.name, first, exc)
        return None
    version = version_line(done.stdout) or version_line(done.stderr)
    if done.returncode != 0 or not version:
        log.warning("language %s: %s %s failed (%d)", preset.name, first,
                    " ".join(preset.version_args), done.returncode)
        return None
    return HostLanguage(preset, version, tools)


def detect(setting: str) -> dict[str, HostLanguage]:
    """Every wanted preset this host has, by name; the probes run at once (a cold JVM alone
    takes seconds). ConfigError for an unknown preset in `setting`."""
    presets = wanted(setting)
    with ThreadPoolExecutor(max_workers=max(1, len(presets)),
                            thread_name_prefix="khala-probe") as pool:
        hosts = list(pool.map(probe, presets))
    found = {h.name: h for h in hosts if h is not None}
    log.info("languages: %s", ", ".join(f"{h.name} ({h.version})" for h in found.values())
             or "none")
    return found
