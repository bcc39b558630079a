"""A client of Duxcore's HTTP API, written from the seed text alone (seed 001): the core's key
is the file `corekey.bin`, sent base64 in `X-Duxcore-CoreKey`; services are created with a
RawConfig, controlled with ops, inspected, measured, re-environed and deleted; images are
imported from a raw .tar. (`put_bind` is Khala's addition for the bind contents.)"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests


class DuxcoreError(Exception):
    def __init__(self, response: requests.Response) -> None:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        super().__init__(f"{response.status_code}: {message}")
        self.status, self.message = response.status_code, str(message)


class Duxcore:
    def __init__(self, url: str, corekey: Path | None, timeout: float = 60.0) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self.headers = {} if corekey is None else {
            "X-Duxcore-CoreKey": base64.b64encode(corekey.read_bytes()).decode()}

    def _call(self, method: str, path: str, body: Any = None, data: bytes | None = None,
              params: dict[str, str] | None = None) -> requests.Response:
        response = requests.request(method, self.url + path, json=body, data=data,
                                    params=params, headers=self.headers, timeout=self.timeout)
        if response.status_code >= 400:
            raise DuxcoreError(response)
        return response

    def create(self, **params: Any) -> None:
        self._call("POST", "/service", {"type": "raw", "params": params})

    def ctl(self, service_id: str, op: str) -> None:
        self._call("POST", f"/service/{service_id}/ctl", {"op": op})

    def stats(self, service_id: str) -> dict[str, Any]:
        return self._call("GET", f"/service/{service_id}/stats").json()  # type: ignore[no-any-return]

    def inspect(self, service_id: str) -> dict[str, Any]:
        return self._call("GET", f"/service/{service_id}").json()  # type: ignore[no-any-return]

    def delete(self, service_id: str) -> None:
        self._call("DELETE", f"/service/{service_id}")

    def set_env(self, service_id: str, env: dict[str, str]) -> None:
        self._call("PATCH", f"/service/{service_id}/env", env)

    def import_image(self, tar: bytes) -> str:
        return str(self._call("POST", "/docker/image", data=tar).json()["image_id"])

    def put_bind(self, service_id: str, tar: bytes) -> None:
        self._call("PUT", f"/service/{service_id}/bind", data=tar)
