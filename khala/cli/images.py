"""`khala image import|build|list|delete`: images (docs/images.md) through API v2, for admins.

`import NAME FILE` checks the tar of a root filesystem here (khala/images/tarball.py), then
sends it to the gateway, which checks and stores it as NAME's next version. `build NAME
--packages …` makes such a tar from Debian's packages with mmdebstrap (or debootstrap) on this
machine, then imports it. Talks to --url or $KHALA_URL with $KHALA_KEY as the API key. Exit
codes: 0 done, 2 usage, a tar that is refused or a build that failed, 3 the API answered an
error, 4 the gateway could not be reached.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
from typing import Any

from khala.cli.problems import DEFAULT_URL, EXIT_OK, EXIT_USAGE, ApiFailure, _headers, send
from khala.errors import InvalidInput
from khala.images.model import check_image_name, parse_image
from khala.images.recipe import load_recipe
from khala.images.tarball import check_tar

MAX_IMAGE = 1 << 40  # what this side reads; the gateway has its own bound (max_image_size)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_SECONDS = 3600


def build(sub: Any) -> None:
    cmd = sub.add_parser("image", help="images: root filesystems steps run in",
                         description=__doc__.split("\n\n")[0] if __doc__ else None)
    cmd.add_argument("--url", default=os.environ.get("KHALA_URL", DEFAULT_URL))
    verbs = cmd.add_subparsers(dest="verb", required=True)
    i = verbs.add_parser("import", help="store a tar of a root filesystem as NAME's next version")
    i.add_argument("name")
    i.add_argument("file", help="a tar (plain, gzip, bzip2 or xz) of a root filesystem")
    i.add_argument("--note", default="", help="how it was made, for people")
    b = verbs.add_parser("build", help="build a root filesystem from Debian packages, import it")
    b.add_argument("name", nargs="?", default="", help="the image's name (default: the "
                   "recipe's)")
    b.add_argument("--recipe", default="", help="a recipe (TOML: packages, setup commands, "
                   "language presets; docs/images.md)")
    b.add_argument("--packages", default="", help="comma-separated Debian packages to include")
    b.add_argument("--suite", default="", help="Debian suite (default: the recipe's, or "
                   "bookworm)")
    b.add_argument("--apt-cache", default="", help="keep downloaded packages in this directory "
                   "and reuse them (a rebuild downloads only what changed)")
    b.add_argument("--mirror", default=DEFAULT_MIRROR)
    b.add_argument("--tool", choices=("auto", "mmdebstrap", "debootstrap"), default="auto")
    b.add_argument("--output", default="", help="keep the tar here (and import it)")
    b.add_argument("--no-import", action="store_true", help="build the tar only (--output)")
    verbs.add_parser("list", help="every image's versions")
    d = verbs.add_parser("delete", help="delete one version (NAME:VERSION)")
    d.add_argument("image")


def import_file(base: str, name: str, path: str, note: str = "") -> dict[str, object]:
    """Check the tar at `path` and import it as `name`'s next version; the gateway's answer."""
    check_image_name(name)
    check_tar(path, MAX_IMAGE)
    query = urllib.parse.urlencode({"note": note}) if note else ""
    with open(path, "rb") as fh:
        _, answer = send(base, "POST", f"/api/v2/images/{name}" + (f"?{query}" if query else ""),
                         data=fh, headers=_headers("application/x-tar",
                                                   os.fstat(fh.fileno()).st_size))
    return dict(answer["data"])


def build_argv(tool: str, packages: list[str], suite: str, mirror: str, target: str,
               recipe: str = "", apt_cache: str = "") -> list[str]:
    """The command that builds the root filesystem: mmdebstrap writes the tar `target`
    itself; debootstrap fills the directory `target`. With `recipe` (mmdebstrap only), its
    setup commands and presets are done by a customize hook (khala/images/customize.py); with
    `apt_cache`, the downloaded packages are kept in that directory and reused next time."""
    include = [f"--include={','.join(packages)}"] if packages else []
    if tool != "mmdebstrap":
        return ["debootstrap", "--variant=minbase", *include, suite, target, mirror]
    hooks: list[str] = []
    if apt_cache:
        cache = shlex.quote(os.path.abspath(apt_cache))
        hooks += ["--skip=download/empty", "--skip=essential/unlink",
                  f'--setup-hook=mkdir -p {cache} "$1"/var/cache/apt/archives/',
                  f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
                  f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
                  '--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb']
    if recipe:
        hooks.append(f"--customize-hook={shlex.quote(sys.executable)} -m "
                     f'khala.images.customize {shlex.quote(os.path.abspath(recipe))} "$1"')
    return ["mmdebstrap", "--quiet", "--variant=apt", "--mode=root", *include, *hooks, suite,
            target, mirror]


def build_tar(packages: list[str], suite: str, mirror: str, tool: str, output: str,
              recipe: str = "", apt_cache: str = "") -> str:
    """Build the root filesystem into the tar `output`; InvalidInput when the tool is missing
    or fails (its output is shown)."""
    if tool == "auto":
        tool = "mmdebstrap" if shutil.which("mmdebstrap") else "debootstrap"
    if (recipe or apt_cache) and tool != "mmdebstrap":
        raise InvalidInput("--recipe and --apt-cache need mmdebstrap (its hooks)")
    if shutil.which(tool) is None:
        raise InvalidInput(f"{tool} is not installed (apt-get install {tool})")
    with tempfile.TemporaryDirectory(prefix="khala-image-build-") as work:
        target = output if tool == "mmdebstrap" else os.path.join(work, "root")
        argv = build_argv(tool, packages, suite, mirror, target, recipe, apt_cache)
        print("khala image: " + shlex.join(argv), file=sys.stderr)
        done = subprocess.run(argv, check=False, timeout=BUILD_SECONDS)
        if done.returncode != 0:
            raise InvalidInput(f"{tool} failed (exit {done.returncode})")
        if tool == "debootstrap":
            with tarfile.open(output, "w") as tar:
                tar.add(target, arcname=".")
    return tool


def run(args: argparse.Namespace) -> int:
    base = args.url
    try:
        if args.verb == "import":
            _print(import_file(base, args.name, args.file, args.note))
        elif args.verb == "build":
            _build(args)
        elif args.verb == "list":
            _, answer = send(base, "GET", "/api/v2/images")
            print(f"{'name':24} {'version':>7} {'bytes':>12}  {'created':20}  note")
            for i in answer["data"]:
                print(f"{i['name']:24} {i['version']:>7} {i['size']:>12}  "
                      f"{i['created'][:19]:20}  {i['note']}")
        else:
            ref = parse_image(args.image)
            if not ref.version:
                raise InvalidInput("delete names one version: NAME:VERSION")
            send(base, "DELETE", f"/api/v2/images/{ref.name}/versions/{ref.version}")
    except (InvalidInput, OSError, subprocess.SubprocessError) as exc:
        print(f"khala image: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiFailure as exc:
        print(f"khala image: {exc}", file=sys.stderr)
        return exc.code
    return EXIT_OK


def _build(args: argparse.Namespace) -> None:
    recipe = load_recipe(args.recipe) if args.recipe else None
    name = args.name or (recipe.name if recipe else "")
    if not name:
        raise InvalidInput("build needs NAME or a --recipe (which names the image)")
    check_image_name(name)
    if args.no_import and not args.output:
        raise InvalidInput("--no-import needs --output (where the tar goes)")
    packages = list(recipe.packages if recipe else ()) + [
        p for p in args.packages.split(",") if p]
    suite = args.suite or (recipe.suite if recipe else "bookworm")
    with tempfile.TemporaryDirectory(prefix="khala-image-") as work:
        output = args.output or os.path.join(work, f"{name}.tar")
        tool = build_tar(packages, suite, args.mirror, args.tool, output, args.recipe,
                         args.apt_cache)
        if args.no_import:
            print(f"khala image: built {output}", file=sys.stderr)
            return
        if recipe:
            note = (f"{tool} {suite}: recipe {os.path.basename(args.recipe)}, "
                    f"{len(packages)} packages, {len(recipe.languages)} languages")
        else:
            note = f"{tool} {suite}" + (f": {' '.join(packages)}" if packages else "")
        _print(import_file(args.url, name, output, note))


def _print(image: dict[str, object]) -> None:
    print(f"{image['name']}:{image['version']} {image['sha256']} ({image['size']} bytes)")
