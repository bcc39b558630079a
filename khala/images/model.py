"""An image's names: `name` (like a problem id), numbered versions, `name[:version]` as a task
or a command line writes it. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from khala.errors import InvalidInput
from khala.files.refs import FileRef
from khala.model import ImageRef

IMAGE_NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")
IMAGE_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
#: `name` or `name:version` (JSON schema)
IMAGE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}(:[1-9][0-9]{0,9})?$"
NAME_WORDS = ("an image name is 1..64 of a-z 0-9 . _ -, starting with a letter or a digit "
              "(then :VERSION, a number, optionally)")


@dataclass
class ImageInfo:
    """One stored version of an image: its tar and when it was added."""

    name: str
    version: int
    file: FileRef
    created: str
    note: str = ""  # how it was made (e.g. "debootstrap bookworm: gcc g++"), for people


def valid_image_name(value: object) -> bool:
    return isinstance(value, str) and IMAGE_NAME_RE.match(value) is not None


def check_image_name(value: object) -> str:
    if not valid_image_name(value):
        raise InvalidInput(NAME_WORDS)
    return str(value)


def parse_image(text: str) -> ImageRef:
    """`name` or `name:version` → an unresolved reference (version 0: the latest).
    InvalidInput for anything else."""
    name, _, version = text.partition(":")
    check_image_name(name)
    if version and not (version.isdigit() and 0 < int(version) < 2**31):
        raise InvalidInput(f"an image version is a positive number, not {version!r}")
    return ImageRef(name=name, version=int(version or 0))


def image_text(ref: ImageRef) -> str:
    """How a client names `ref`: `name` or `name:version`."""
    return f"{ref.name}:{ref.version}" if ref.version else ref.name


def image_owner(name: str, version: int) -> str:
    """The owner under which an image version refers to its tar (the file sweep keeps it)."""
    return f"image:{name}:{version}"
