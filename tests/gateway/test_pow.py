"""pow-1's pure parts: server-defined call templates."""

from __future__ import annotations

from types import SimpleNamespace

from khala.gateway.live.session import Session, fill
from khala.model import Code
from khala.rpc import convert


def test_fill_replaces_placeholders_inside_strings_only() -> None:
    template = {"execute": {"command": "run {{0}} {{1}}", "files": [{"content": "{{0}}"}]}}
    assert fill(template, ['"x"', "y"]) == {
        "execute": {"command": 'run "x" y', "files": [{"content": '"x"'}]}}


class _Stops:
    """A client whose stop meets the codes given, in turn (the judicator's answers), as the
    typed client does: OK returns, any other code raises its error."""

    def __init__(self, *codes: int) -> None:
        self.codes, self.calls = list(codes), 0

    def stop(self, ref: str) -> None:
        self.calls += 1
        code = self.codes.pop(0)
        if code != Code.OK:
            raise convert.error_of(code, f"stop {ref}", "127.0.0.1:9")


def _session(client: _Stops) -> Session:
    endpoint = SimpleNamespace(client=client)
    session = Session(endpoint, None, cancel_on_disconnect=False)  # type: ignore[arg-type]
    session.ref = "t1"
    return session


def test_a_cancel_the_judicator_could_not_record_is_sent_again() -> None:
    client = _Stops(Code.ERROR, Code.OK)  # e.g. its store was unavailable the first time
    session = _session(client)
    session.ended.wait = lambda timeout=None: False  # type: ignore[method-assign]
    session._cancel()
    assert client.calls == 2


def test_an_answered_cancel_is_sent_once() -> None:
    for code in (Code.OK, Code.CONFLICT, Code.NOT_EXIST):
        client = _Stops(code)
        _session(client)._cancel()
        assert client.calls == 1
