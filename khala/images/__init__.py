"""Images: named, versioned root filesystems a step can run in instead of the executor's host
`/` (docs/images.md). An image is a tar of a root filesystem stored as a content-addressed file
(khala/files/); its name and version map to that file's SHA-256 in the store. Pure here: the
names (`model.py`) and the checks and unpacking of a tar (`tarball.py`); the store keeps the
names (khala/store/images.py), the judicator resolves them (khala/judicator/images.py), each
executor unpacks an image once (khala/executor/images.py)."""
