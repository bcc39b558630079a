"""The MongoDB backend's images (khala/store/images.py).

Documents:
    image_names: {_id: name, next_version}
    images:      {_id: "<name>:<version>", name, version, sha256, size, created, note}

A version's number is claimed by the insert of its unique `_id` (a racer takes the next);
`next_version` only moves up, so a number is never given twice.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from khala.files.refs import FileRef
from khala.images.model import ImageInfo
from khala.store.images import ImageStore


def _info(doc: dict[str, Any]) -> ImageInfo:
    return ImageInfo(name=doc["name"], version=int(doc["version"]),
                     file=FileRef(doc["sha256"], int(doc["size"])),
                     created=doc.get("created", ""), note=doc.get("note", ""))


class MongoImages(ImageStore):
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._names = db["image_names"]
        self._images = db["images"]
        self._images.create_index([("name", ASCENDING), ("version", ASCENDING)],
                                  name="name_version")

    def add(self, name: str, file: FileRef, note: str, now: str) -> int:
        try:
            self._names.insert_one({"_id": name, "next_version": 1})
        except DuplicateKeyError:
            pass
        doc = self._names.find_one({"_id": name}) or {}
        number = int(doc.get("next_version") or 1)
        while True:
            try:
                self._images.insert_one({
                    "_id": f"{name}:{number}", "name": name, "version": number,
                    "sha256": file.sha256, "size": file.size, "created": now, "note": note})
                break
            except DuplicateKeyError:
                number += 1  # a racer took it, or it was given before
        self._names.update_one({"_id": name}, {"$max": {"next_version": number + 1}})
        return number

    def get(self, name: str, version: int = 0) -> ImageInfo | None:
        if version:
            doc = self._images.find_one({"_id": f"{name}:{version}"})
        else:
            found = list(self._images.find({"name": name}).sort("version", DESCENDING).limit(1))
            doc = found[0] if found else None
        return None if doc is None else _info(doc)

    def all(self, name: str = "") -> list[ImageInfo]:
        where = {"name": name} if name else {}
        cursor = self._images.find(where).sort([("name", ASCENDING), ("version", ASCENDING)])
        return [_info(d) for d in cursor]

    def delete(self, name: str, version: int) -> bool:
        return self._images.delete_one({"_id": f"{name}:{version}"}).deleted_count == 1
