"""Importing an image: a tar of a root filesystem checked (khala/images/tarball.py), stored as
a file through the judicator's file calls (nothing sent when the store has it already) and
added as the next version of its name. Used by the gateway's route (POST /api/v2/images/…),
which the CLI calls."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from khala.files.refs import FileRef
from khala.files.transfer import FileCalls, send_file
from khala.images.model import ImageInfo, check_image_name
from khala.images.tarball import check_tar


class ImageCalls(FileCalls, Protocol):
    def image_add(self, name: str, file: FileRef, note: str = "") -> ImageInfo: ...


def import_tar(client: ImageCalls, name: str, fh: BinaryIO, max_bytes: int,
               note: str = "") -> ImageInfo:
    """Check the tar in the open file `fh`, store it and add it as `name`'s next version.
    InvalidInput for a bad name or a tar that is refused (nothing is stored then)."""
    check_image_name(name)
    check_tar(fh, max_bytes)
    ref = send_file(client, fh)
    return client.image_add(name, ref, note)
