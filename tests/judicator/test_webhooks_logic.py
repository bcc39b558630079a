"""Webhook URL checks and signatures (khala/judicator/webhooks.py)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from khala.judicator.webhooks import WebhookSender, check_callback_url, signature
from khala.store import open_store


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///x", "http://u:p@example.org/",
                                 "http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/",
                                 "http://169.254.169.254/latest", "http://0.0.0.0/",
                                 "http://localhost:8080/", "http://" + "a" * 2050])
def test_callback_urls_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_callback_url(url, allow_internal=False)


def test_callback_urls_allowed() -> None:
    check_callback_url("http://127.0.0.1:9/hook", allow_internal=True)
    check_callback_url("https://93.184.215.14/hook", allow_internal=False)  # a public address


def test_signature() -> None:
    expected = hmac.new(b"k", b"123.body", hashlib.sha256).hexdigest()
    assert signature(b"k", "123", b"body") == f"sha256={expected}"


class _Settings:
    webhook_secret_file = ""
    webhook_timeout = 1.0
    webhook_workers = 2
    webhook_per_host = 1


def test_the_sender_marks_what_finished_here_due_when_it_stops() -> None:
    """Finished tasks wait in memory for the sender's next flush; a stop must not drop them."""
    flushes: list[int] = []
    sender = WebhookSender(None, lambda _id: None, lambda _id: True, lambda: False, _Settings(),
                           flush=lambda: flushes.append(1) or 0)
    sender._stop.set()  # stopped before any pass: only the flush on the way out can run
    sender._loop()
    assert flushes == [1]


def test_the_sweep_pages_past_pending_webhooks_of_undone_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Webhooks of tasks finished on a judicator that died before marking them due are found
    by the leader's sweep; a full page of undone tasks' webhooks must not hide them for ever."""
    monkeypatch.setattr("khala.judicator.webhooks.SWEEP_PAGE", 2)
    store = open_store(f"sqlite:///{tmp_path}/khala.db")
    ops = store.ops
    for task_id in ["a1", "a2", "a3", "a4", "z9"]:
        ops.add_webhook(task_id, f"http://h/{task_id}")
    sender = WebhookSender(ops, lambda _id: None, lambda task_id: task_id == "z9",
                           lambda: True, _Settings())
    sweeps = 0
    while ops.webhook("z9")["state"] == "pending" and sweeps < 10:  # type: ignore[index]
        sender._sweep()
        sweeps += 1
    assert (sweeps, ops.webhook("z9")["state"]) == (3, "ready")  # type: ignore[index]
    assert [ops.webhook(i)["state"] for i in ["a1", "a4"]] == ["pending"] * 2  # type: ignore[index]
    sender._sweep()  # round again from the start
    assert sender._swept_to == "a2"
    store.close()
