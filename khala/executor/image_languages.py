"""Languages that travel with images (docs/images.md, "Presets"): an image built from a recipe
carries its presets (khala/images/recipe.py, PRESETS_PATH) with the versions recorded when it
was built. A judged task whose compile step runs in such an image uses the image's preset of its
language; the executor reads each image's presets once.

The executor's `images` setting names images whose languages it offers: at start (in the
background, like the host's language detection) each is resolved through the judicators to its
version, fetched and unpacked as a task's image would be, and its languages are offered beside
the host's, each marked with the image (`/api/v2/languages` lists them per image).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from khala.errors import InvalidInput, KhalaError
from khala.executor.images import ImageRoots
from khala.images.model import ImageInfo, parse_image
from khala.images.recipe import read_image_presets
from khala.judging.presets import HostLanguage
from khala.model import ImageRef, Language

log = logging.getLogger(__name__)
RETRY_SECONDS = 5.0  # between attempts to prepare an image while the judicators cannot


class ImageLanguages:
    """The presets of unpacked images, read once per image directory (an image never changes:
    its directory is named by its tar's digest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[str, dict[str, HostLanguage]] = {}

    def of(self, root: str) -> dict[str, HostLanguage]:
        """The presets of the unpacked image at `root` by name; {} when it carries none (or a
        presets file that cannot be read, which is logged: its steps use the host's)."""
        with self._lock:
            found = self._read.get(root)
        if found is not None:
            return found
        try:
            found = {name: HostLanguage(x.preset, x.version)
                     for name, x in read_image_presets(root).items()}
        except InvalidInput as exc:
            log.warning("image %s: its presets are not used: %s", root, exc)
            found = {}
        with self._lock:
            self._read[root] = found
        return found


class ImageLister(Protocol):
    def image_list(self, name: str = "") -> list[ImageInfo]: ...


def resolve(client: ImageLister, text: str) -> ImageRef:
    """`NAME` (the latest version) or `NAME:VERSION` as the judicators know it; InvalidInput
    for an image they do not have."""
    ref = parse_image(text)
    versions = [i for i in client.image_list(ref.name) if i.name == ref.name and (
        not ref.version or i.version == ref.version)]
    if not versions:
        raise InvalidInput(f"no image {text!r}")
    info = max(versions, key=lambda i: i.version)
    return ImageRef(name=ref.name, version=info.version, resolved=info.version,
                    sha256=info.file.sha256, size=info.file.size)


def offer(roots: ImageRoots, presets: ImageLanguages, ref: ImageRef) -> list[Language]:
    """The languages of image `ref`, unpacked (fetched first when it is not here yet)."""
    with roots.holding([ref]) as paths:
        found = presets.of(paths[ref.sha256])
    label = f"{ref.name}:{ref.resolved}"
    return [Language(name, x.version, image=label, source=x.preset.source,
                     time_factor=x.preset.time_factor) for name, x in found.items()]


def prepare(names: list[str], client: ImageLister, roots: ImageRoots, presets: ImageLanguages,
            stopped: Callable[[], bool]) -> list[Language]:
    """The languages of the images `names`, each retried while the judicators cannot answer
    (until `stopped`); an image they do not have, or whose tar is refused, is logged and
    skipped."""
    offered: list[Language] = []
    for text in names:
        while not stopped():
            try:
                ref = resolve(client, text)
                found = offer(roots, presets, ref)
            except InvalidInput as exc:
                log.error("image %s: its languages are not offered: %s", text, exc)
                break
            except (KhalaError, OSError) as exc:
                log.warning("image %s: not ready yet (%s); trying again", text, exc)
                threading.Event().wait(RETRY_SECONDS)
                continue
            log.info("image %s:%d offers %s", ref.name, ref.resolved,
                     ", ".join(x.name for x in found) or "no language")
            offered += found
            break
    return offered
