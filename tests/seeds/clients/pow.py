"""A client of Process Over Websocket (seed 002) and of its REST half, written from the seed
text and the pow-1 server's OpenAPI document alone: the websocket with the `pow-1`
subprotocol (binary frames: call, signals, result; text frames: input and output) and the REST
routes /new, /status/{id}, /input/{id}, /closeInput/{id}, /cancel/{id} under a base URL."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import requests
from websockets.sync.client import ClientConnection, connect


class PowError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text}")
        self.status, self.text = status, text


class PowRest:
    def __init__(self, base: str, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.base, self.headers, self.timeout = base.rstrip("/"), headers or {}, timeout

    def _post(self, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        response = requests.post(self.base + path, headers=headers, timeout=self.timeout,
                                 **kwargs)
        if response.status_code != 200:
            raise PowError(response.status_code, response.text)
        return response

    def new(self, call: str, params: list[str] | None = None) -> str:
        body = {"call": call} if params is None else {"call": call, "params": params}
        return str(self._post("/new", json=body).json())

    def status(self, process: str) -> dict[str, Any]:
        response = requests.get(f"{self.base}/status/{quote(process)}", headers=self.headers,
                                timeout=self.timeout)
        if response.status_code != 200:
            raise PowError(response.status_code, response.text)
        return response.json()  # type: ignore[no-any-return]

    def input(self, process: str, text: str) -> str:
        return self._post(f"/input/{quote(process)}", data=text.encode(),
                          headers={"Content-Type": "text/plain"}).text

    def close_input(self, process: str) -> str:
        return self._post(f"/closeInput/{quote(process)}").text

    def cancel(self, process: str) -> str:
        return self._post(f"/cancel/{quote(process)}").text


class PowSocket:
    """One pow-1 session (`with PowSocket(url) as session:`): `call`, then `send` input /
    `close` / `cancel`, and `finish` for the output and the result message."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url, self.headers = url, headers or {}

    def __enter__(self) -> PowSocket:
        self._connection = connect(self.url, subprotocols=["pow-1"],  # type: ignore[list-item]
                                   additional_headers=self.headers)
        self.ws: ClientConnection = self._connection.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.__exit__(*exc)  # type: ignore[arg-type]

    def call(self, call: str, params: list[str]) -> None:
        self.ws.send(json.dumps({"call": call, "params": params}).encode())

    def send(self, text: str) -> None:
        self.ws.send(text)

    def close(self) -> None:
        self.ws.send(json.dumps({"signal": "close"}).encode())

    def cancel(self) -> None:
        self.ws.send(json.dumps({"signal": "cancel"}).encode())

    def finish(self, timeout: float = 60.0) -> tuple[str, dict[str, Any]]:
        """The output text until the result message, and that message; the server then
        closes with 1000."""
        texts = []
        while True:
            message = self.ws.recv(timeout=timeout)
            if isinstance(message, bytes):
                result = json.loads(message)
                break
            texts.append(message)
        try:
            self.ws.recv(timeout=timeout)
        except Exception:  # noqa: BLE001 - the close frame ends the session
            pass
        assert self.ws.close_code == 1000 and self.ws.close_reason == ""
        return "".join(texts), result
