"""The file calls of StubJudicator (khala/rpc/stub.py), in memory: uploads checked as a
judicator checks them (chunk layout, hash), files by digest; and the image calls (image
versions whose tars are such files)."""

from __future__ import annotations

import hashlib
from typing import Any

from khala import model
from khala.errors import InvalidInput, NotFound
from khala.files.refs import FileRef, check_digest
from khala.images.model import ImageInfo, check_image_name
from khala.store.files import check_chunk, check_range, read_length


class StubFiles:
    """Mixed into StubJudicator: `files` (sha256 → bytes) and the uploads under way."""

    files: dict[str, bytes]
    uploads: dict[str, tuple[FileRef, dict[int, bytes]]]

    def _called(self, method: str, *args: Any) -> None:  # StubJudicator's
        raise NotImplementedError

    def file_begin(self, ref: FileRef) -> str:
        self._called("file_begin", ref)
        check_digest(ref.sha256)
        if ref.size < 0:
            raise InvalidInput("a file's size is 0 or more bytes")
        if ref.sha256 in self.files:
            return ""
        upload = model.new_id()
        self.uploads[upload] = (ref, {})
        return upload

    def file_put(self, upload: str, offset: int, data: bytes) -> None:
        self._called("file_put", upload, offset, len(data))
        if upload not in self.uploads:
            raise NotFound(f"no upload {upload!r}")
        ref, chunks = self.uploads[upload]
        check_chunk(ref.size, offset, len(data))
        chunks[offset] = bytes(data)

    def file_end(self, upload: str) -> FileRef:
        self._called("file_end", upload)
        if upload not in self.uploads:
            raise NotFound(f"no upload {upload!r}")
        ref, chunks = self.uploads.pop(upload)
        data = b"".join(chunks[k] for k in sorted(chunks))
        if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise InvalidInput("the upload's bytes do not hash to its sha256")
        self.files[ref.sha256] = data
        return ref

    def file_read(self, sha256: str, offset: int, length: int) -> bytes:
        self._called("file_read", sha256, offset, length)
        check_range(offset, length)
        if sha256 not in self.files:
            raise NotFound(f"no file {sha256}")
        data = self.files[sha256]
        return data[offset:offset + read_length(len(data), offset, length)]


class StubImages:
    """Mixed into StubJudicator: image versions (`images`, by name then version) whose tars
    are in the stub's `files`."""

    files: dict[str, bytes]
    images: list[ImageInfo]

    def _called(self, method: str, *args: Any) -> None:  # StubJudicator's
        raise NotImplementedError

    def image_add(self, name: str, file: FileRef, note: str = "") -> ImageInfo:
        self._called("image_add", name, file, note)
        check_image_name(name)
        if file.sha256 not in self.files:
            raise InvalidInput(f"file {file.sha256} is not stored: upload the tar first")
        number = 1 + max((i.version for i in self.images if i.name == name), default=0)
        info = ImageInfo(name, number, file, model.now(), note)
        self.images.append(info)
        return info

    def image_list(self, name: str = "") -> list[ImageInfo]:
        self._called("image_list", name)
        return sorted((i for i in self.images if not name or i.name == name),
                      key=lambda i: (i.name, i.version))

    def image_delete(self, name: str, version: int) -> None:
        self._called("image_delete", name, version)
        kept = [i for i in self.images if (i.name, i.version) != (name, version)]
        if len(kept) == len(self.images):
            raise NotFound(f"no image {name}:{version}")
        self.images[:] = kept
