"""A client of Procstar's HTTP API, written from its API text alone (seed 000): results in
`{"data": …}`, errors in `{"errors": [{status, detail}]}`, the routes under /procs. It knows
nothing of the server behind it."""

from __future__ import annotations

import gzip
from typing import Any
from urllib.parse import quote

import brotli
import requests


class ProcstarError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status, self.errors = status, errors


class Procstar:
    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.url, self.headers, self.timeout = url.rstrip("/"), headers or {}, timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers,
                                timeout=self.timeout, **kwargs)

    def _data(self, response: requests.Response) -> Any:
        body = response.json()
        if response.status_code >= 400:
            raise ProcstarError(response.status_code, body["errors"])
        return body["data"]

    def start(self, spec: dict[str, Any], proc_id: str | None = None
              ) -> tuple[str, dict[str, Any]]:
        """Create and start a process; (its id, its result). Without an id the server
        chooses one: it is the last part of the Location header."""
        if proc_id is None:
            response = self._call("POST", "/procs", json=spec)
            data = self._data(response)
            assert response.status_code == 201, response.status_code
            proc_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        else:
            response = self._call("POST", f"/procs/{quote(proc_id)}", json=spec)
            data = self._data(response)
            assert response.status_code == 201, response.status_code
        return proc_id, data["proc"]

    def procs(self, fds: bool = False) -> dict[str, dict[str, Any]]:
        return self._data(self._call("GET", "/procs" + ("?fds" if fds else "")))["procs"]  # type: ignore[no-any-return]

    def proc(self, proc_id: str) -> dict[str, Any]:
        return self._data(self._call("GET", f"/procs/{quote(proc_id)}"))["proc"]  # type: ignore[no-any-return]

    def fd(self, proc_id: str, fd: str) -> dict[str, Any]:
        return self._data(self._call("GET", f"/procs/{quote(proc_id)}/fds/{fd}"))  # type: ignore[no-any-return]

    def output(self, proc_id: str, fd: str, encoding: str | None = None) -> tuple[bytes, str]:
        """The raw output of an fd, asked compressed with `encoding` (gz or br) and
        decompressed here; (the bytes, the Content-Encoding the server answered)."""
        headers = {"Accept-Encoding": encoding or "identity"}
        response = self._call("GET", f"/procs/{quote(proc_id)}/fds/{fd}/out", headers=headers,
                              stream=True)
        body = response.raw.read(decode_content=False)
        if response.status_code >= 400:
            raise ProcstarError(response.status_code, [{"detail": body.decode()}])
        coding = response.headers.get("Content-Encoding", "")
        if coding in ("gz", "gzip"):
            body = gzip.decompress(body)
        elif coding == "br":
            body = brotli.decompress(body)
        return body, coding

    def delete(self, proc_id: str) -> None:
        self._data(self._call("DELETE", f"/procs/{quote(proc_id)}"))

    def signal(self, proc_id: str, signal: str) -> None:
        self._data(self._call("PUT", f"/procs/{quote(proc_id)}/signals/{signal}"))
