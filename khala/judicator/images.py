"""The image side of the judicator (docs/images.md), on domain types: image versions added as
stored tars, listed and deleted, and naming one in a task.

An image version is a name, a number and a stored tar (a file uploaded through the file calls
first, khala/judicator/files.py). The tar was checked by whoever imported it (the CLI, the
gateway); every executor checks it again before unpacking (khala/images/tarball.py), so a bad
tar fails the tasks that name it, never an executor. The version refers to its tar (the file
sweep keeps it); so does every task that names it, from its submission until it is removed:
deleting a version only takes its name away, and tasks already queued still run in it.
"""

from __future__ import annotations

import logging

from khala import model
from khala.config import JudicatorSettings
from khala.errors import InvalidInput, NotFound
from khala.files.refs import FileRef, check_digest
from khala.images.model import ImageInfo, check_image_name, image_owner, image_text
from khala.model import ImageRef, Task
from khala.store.base import Store
from khala.store.files import task_owner

log = logging.getLogger(__name__)
MAX_NOTE = 1000


class ImageApi:
    def __init__(self, store: Store, settings: JudicatorSettings) -> None:
        self.store = store
        self.settings = settings

    def add(self, name: str, file: FileRef, note: str = "") -> ImageInfo:
        """A new version of image `name` whose tar is `file` (stored already)."""
        check_image_name(name)
        check_digest(file.sha256)
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"an image's note is at most {MAX_NOTE} characters")
        size = self.store.files.stat(file.sha256, model.now())
        if size is None:
            raise InvalidInput(f"file {file.sha256} is not stored: upload the tar first")
        if size != file.size:
            raise InvalidInput(f"file {file.sha256} is {size} bytes, not {file.size}")
        number = self.store.images.add(name, file, note, model.now())
        self.store.files.refer(image_owner(name, number), [file.sha256])
        log.info("image %s:%d: tar %s (%d bytes)", name, number, file.sha256, file.size)
        return self.get(name, number)

    def get(self, name: str, version: int = 0) -> ImageInfo:
        found = self.store.images.get(name, version) if version >= 0 else None
        if found is None:
            raise NotFound(f"no image {name}:{version}" if version else f"no image {name!r}")
        return found

    def list(self, name: str = "") -> list[ImageInfo]:
        return self.store.images.all(name)

    def delete(self, name: str, version: int) -> None:
        """Delete one version (its name; tasks naming it keep its tar until they go)."""
        if not self.store.images.delete(name, version):
            raise NotFound(f"no image {name}:{version}")
        self.store.files.release(image_owner(name, version))

    # ------------------------------------------------------------------ tasks

    def _resolved(self, ref: ImageRef | None) -> ImageRef | None:
        if ref is None:
            return None
        check_image_name(ref.name)
        found = self.store.images.get(ref.name, ref.version) if ref.version >= 0 else None
        if found is None:
            raise InvalidInput(f"no image {image_text(ref)!r} (khala image list shows them)")
        self.store.files.stat(found.file.sha256, model.now())  # asked: the sweep waits
        return ImageRef(name=ref.name, version=ref.version, resolved=found.version,
                        sha256=found.file.sha256, size=found.file.size)

    def attach(self, task: Task) -> Task:
        """`task` with the image versions its steps name resolved (their tars recorded).
        InvalidInput for an image that does not exist."""
        task.compile.image = self._resolved(task.compile.image)
        task.execute.image = self._resolved(task.execute.image)
        return task

    def confirm(self, task: Task) -> None:
        """After `task` was stored: it refers to its images' tars until it is removed."""
        digests = [i.sha256 for i in (task.compile.image, task.execute.image) if i is not None]
        if digests:
            self.store.files.refer(task_owner(task.id), digests)
