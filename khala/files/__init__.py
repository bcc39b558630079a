"""Content-addressed files: problems' test data, jury programs, a version's spec and large task
outputs, each stored once under its SHA-256 and fetched in bounded chunks (docs/judging.md,
"Files"). Pure: the names, the checks and the cache's bookkeeping. The bytes live in the store
(khala/store/files.py and its backends), on the wire (khala/rpc) and in each executor's cache
(khala/executor/filecache.py).
"""

from khala.files.refs import CHUNK, FileRef, check_digest, valid_digest

__all__ = ["CHUNK", "FileRef", "check_digest", "valid_digest"]
