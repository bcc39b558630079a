"""Images on the wire (docs/rpc.md, "Images"): a step's image reference and image versions."""

from __future__ import annotations

from typing import Any

from khala.errors import InvalidInput
from khala.images.model import ImageInfo
from khala.model import ImageRef
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.files import file_ref_from_thrift, file_ref_to_thrift


def image_ref_to_thrift(ref: ImageRef | None) -> Any:
    if ref is None:
        return None
    return T.ImageRef(name=ref.name, version=ref.version or None, resolved=ref.resolved or None,
                      sha256=ref.sha256 or None, size=ref.size or None)


def image_ref_from_thrift(wire: Any) -> ImageRef | None:
    """InvalidInput for a negative version."""
    if wire is None:
        return None
    version = wire.version or 0
    if not isinstance(version, int) or version < 0:
        raise InvalidInput("image.version must be 0 (the latest) or a version's number")
    return ImageRef(name=wire.name or "", version=version, resolved=wire.resolved or 0,
                    sha256=wire.sha256 or "", size=wire.size or 0)


def image_to_thrift(info: ImageInfo) -> Any:
    return T.Image(name=info.name, version=info.version, file=file_ref_to_thrift(info.file),
                   created=info.created, note=info.note)


def image_from_thrift(wire: Any) -> ImageInfo:
    return ImageInfo(name=wire.name or "", version=wire.version or 0,
                     file=file_ref_from_thrift(wire.file, "image"), created=wire.created or "",
                     note=wire.note or "")
