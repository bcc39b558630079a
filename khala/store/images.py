"""The image side of the store: image names and their numbered versions, each the SHA-256 of a
stored tar (khala/store/files.py), beside the tasks (same SQLite file or MongoDB database).
Each backend's `Store` carries its `ImageStore` as `store.images`.

A version's number is never given twice for a name, even after the version is deleted, so
`name:3` means one tar for as long as the cluster lives. Every write is one single-record write
(an insert on a unique key, or a conditional update): any number of judicators may call at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from khala.files.refs import FileRef
from khala.images.model import ImageInfo


class ImageStore(ABC):
    @abstractmethod
    def add(self, name: str, file: FileRef, note: str, now: str) -> int:
        """Record a new version of `name` (the name made when new) under the next number;
        returns it."""

    @abstractmethod
    def get(self, name: str, version: int = 0) -> ImageInfo | None:
        """One version (0: the latest), or None."""

    @abstractmethod
    def all(self, name: str = "") -> list[ImageInfo]:
        """Every version of every image (or of `name`), by name then version."""

    @abstractmethod
    def delete(self, name: str, version: int) -> bool:
        """Delete one version; False when there was none."""
