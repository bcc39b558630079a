"""A client of Meproc's HTTP API, written from its wiki page alone (seed 003): one URL, /proc;
POST starts a task, PUT ?name= restarts it, DELETE ?name= stops it, GET shows tasks and running
processes; answers `{"code", "msg", "data"}`."""

from __future__ import annotations

import json
from typing import Any

import requests


class MeprocError(Exception):
    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(f"{answer.get('code')}: {answer.get('msg')}")
        self.code, self.msg = answer.get("code"), answer.get("msg")


class Meproc:
    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.url, self.headers, self.timeout = url.rstrip("/") + "/proc", headers or {}, timeout

    def _call(self, method: str, name: str | None = None, body: Any = None) -> dict[str, Any]:
        response = requests.request(
            method, self.url, params=None if name is None else {"name": name},
            data=None if body is None else json.dumps(body), headers=self.headers,
            timeout=self.timeout)
        answer = response.json()
        if answer.get("code") != 200:
            raise MeprocError(answer)
        return answer  # type: ignore[no-any-return]

    def start(self, name: str, cmd: str, type: str = "once", replica: int = 1,  # noqa: A002
              **optional: Any) -> None:
        """optional: user, group, cron, interval, deps."""
        self._call("POST", body={"name": name, "cmd": cmd, "type": type, "replica": replica,
                                 **optional})

    def restart(self, name: str) -> None:
        self._call("PUT", name)

    def stop(self, name: str) -> None:
        self._call("DELETE", name)

    def show(self) -> dict[str, Any]:
        return self._call("GET")["data"]  # type: ignore[no-any-return]
