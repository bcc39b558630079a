"""The MongoDB backend's files (khala/store/files.py), in GridFS's layout so that every
judicator (and `mongofiles`) sees them: bucket `files`, one `files.files` document per stored
file (`_id` the ObjectId of the upload that stored it, `filename` its SHA-256), its bytes in
`files.chunks` documents of CHUNK bytes (`files_id`, `n`, `data`; `_id` "<upload>:<n>").
`file_names` ({_id: sha256, file: the upload's ObjectId, length, used}) finds a file by its
digest.

Every lookup on the paths that move bytes is by `_id` (a chunk, a name): FerretDB, which runs
other filters as a scan of the collection, answers those directly.

An upload writes its chunks under its own id (any judicator may take any chunk: the upload's
state is all in the database); `end` reads them back in order, hashing, and commits the file by
inserting its `file_names` document. Two uploads of the same bytes race on that unique `_id`:
the loser's chunks are deleted. Until that insert the chunks belong to no file, and readers
never see them. `uploads` records each upload (digest, size, start) so that the sweep can
remove abandoned ones. `file_refs` ({_id: "<owner> <sha256>", owner, sha256}) says who refers
to what.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

from bson import Binary, ObjectId
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from khala.errors import InvalidInput, NotFound
from khala.files.refs import CHUNK, FileRef, check_digest
from khala.store.files import FileStore, check_chunk, check_range, read_length

BUCKET = "files"


def _upload_oid(upload: str) -> ObjectId:
    if not ObjectId.is_valid(upload):
        raise NotFound(f"no upload {upload!r}")
    return ObjectId(upload)


def _chunk_id(upload: ObjectId, n: int) -> str:
    return f"{upload}:{n}"


class MongoFiles(FileStore):
    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._files = db[f"{BUCKET}.files"]
        self._chunks = db[f"{BUCKET}.chunks"]
        self._names = db["file_names"]
        self._uploads = db["uploads"]
        self._refs = db["file_refs"]
        self._names.create_index([("used", ASCENDING)], name="used")
        self._chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)],
                                  name="files_id_n")
        self._refs.create_index([("sha256", ASCENDING)], name="sha256")
        self._refs.create_index([("owner", ASCENDING)], name="owner")
        self._uploads.create_index([("started", ASCENDING)], name="started")

    def _name(self, sha256: str) -> dict[str, Any] | None:
        return self._names.find_one({"_id": check_digest(sha256)})

    def _drop_chunks(self, upload: ObjectId, size: int) -> None:
        for n in range(max(1, -(-size // CHUNK))):
            self._chunks.delete_one({"_id": _chunk_id(upload, n)})

    # ------------------------------------------------------------------ uploads

    def stat(self, sha256: str, now: str = "") -> int | None:
        doc = self._name(sha256)
        if doc is None:
            return None
        if now and str(doc.get("used", "")) < now:
            # $max: a later time set meanwhile by another judicator stays. Filtered by `_id`
            # alone, the one filter a MongoDB-wire server without a planner (FerretDB v1) looks
            # up through an index: a problem's version stats thousands of files at once.
            self._names.update_one({"_id": sha256}, {"$max": {"used": now}})
        return int(doc["length"])

    def begin(self, sha256: str, size: int, now: str) -> str:
        check_digest(sha256)
        if size < 0:
            raise InvalidInput("a file's size is 0 or more bytes")
        if self.stat(sha256, now) is not None:
            return ""
        oid = ObjectId()
        self._uploads.insert_one({"_id": oid, "sha256": sha256, "size": size, "started": now})
        return str(oid)

    def _upload(self, upload: str) -> dict[str, Any]:
        doc = self._uploads.find_one({"_id": _upload_oid(upload)})
        if doc is None:
            raise NotFound(f"no upload {upload!r}")
        return doc

    def put(self, upload: str, offset: int, data: bytes) -> None:
        doc = self._upload(upload)
        check_chunk(int(doc["size"]), offset, len(data))
        n = offset // CHUNK
        self._chunks.replace_one({"_id": _chunk_id(doc["_id"], n)},
                                 {"files_id": doc["_id"], "n": n, "data": Binary(data)},
                                 upsert=True)

    def end(self, upload: str) -> FileRef:
        doc = self._upload(upload)
        oid, sha256, size = doc["_id"], str(doc["sha256"]), int(doc["size"])
        try:
            hasher, length = hashlib.sha256(), 0
            for n in range(-(-size // CHUNK)):
                chunk = self._chunks.find_one({"_id": _chunk_id(oid, n)})
                if chunk is None:  # a chunk missing: the bytes cannot match
                    break
                hasher.update(chunk["data"])
                length += len(chunk["data"])
            if length != size or hasher.hexdigest() != sha256:
                raise InvalidInput(f"the upload's {length} bytes do not hash to its sha256 "
                                   f"{sha256} of {size} bytes (a chunk missing or wrong)")
            try:
                self._names.insert_one({"_id": sha256, "file": oid, "length": size,
                                        "used": str(doc.get("started") or "")})
            except DuplicateKeyError:
                # The same bytes were stored meanwhile: by another upload (ours go), or by
                # this very one — an end asked again while the first was at work (a client
                # retries a call that timed out): its chunks are the file's then, and stay.
                if self._names.find_one({"_id": sha256, "file": oid}) is None:
                    self._drop_chunks(oid, size)
                return FileRef(sha256, size)
            self._files.insert_one({"_id": oid, "length": size, "chunkSize": CHUNK,
                                    "filename": sha256,
                                    "uploadDate": _dt.datetime.now(_dt.UTC)})
            return FileRef(sha256, size)
        except BaseException:
            if self._names.find_one({"_id": sha256, "file": oid}) is None:
                self._drop_chunks(oid, size)
            raise
        finally:
            self._uploads.delete_one({"_id": oid})

    # ------------------------------------------------------------------ reading

    def read(self, sha256: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        doc = self._name(sha256)
        if doc is None:
            raise NotFound(f"no file {sha256}")
        wanted = read_length(int(doc["length"]), offset, length)
        if not wanted:
            return b""
        first, last = offset // CHUNK, (offset + wanted - 1) // CHUNK
        parts = []
        for n in range(first, last + 1):
            chunk = self._chunks.find_one({"_id": _chunk_id(doc["file"], n)})
            if chunk is None:
                raise NotFound(f"file {sha256} is incomplete in the store")
            parts.append(bytes(chunk["data"]))
        data = b"".join(parts)[offset - first * CHUNK:][:wanted]
        if len(data) != wanted:
            raise NotFound(f"file {sha256} is incomplete in the store")
        return data

    # ------------------------------------------------------------------ references

    def refer(self, owner: str, digests: list[str]) -> None:
        docs = [{"_id": f"{owner} {check_digest(d)}", "owner": owner, "sha256": d}
                for d in sorted(set(digests))]
        if not docs:
            return
        try:
            self._refs.insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # those already recorded
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    def release(self, owner: str) -> None:
        self._refs.delete_many({"owner": owner})

    def sweep(self, before: str) -> int:
        gone = 0
        for doc in list(self._names.find({"used": {"$lt": before}})):
            if self._refs.find_one({"sha256": doc["_id"]}, {"_id": 1}) is not None:
                continue
            # Conditional: a file asked for since the query (a new upload of its bytes, a
            # version about to refer to it) is kept.
            if self._names.delete_one({"_id": doc["_id"], "used": {"$lt": before}}
                                      ).deleted_count:
                self._files.delete_one({"_id": doc["file"]})
                self._drop_chunks(doc["file"], int(doc["length"]))
                gone += 1
        for doc in list(self._uploads.find({"started": {"$lt": before}})):
            self._drop_chunks(doc["_id"], int(doc["size"]))
            self._uploads.delete_one({"_id": doc["_id"]})
        return gone
