"""Webhook URL checks and signatures (khala/judicator/webhooks.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from khala.judicator.webhooks import WebhookSender, check_callback_url, signature


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


def test_the_sender_marks_what_finished_here_due_when_it_stops() -> None:
    """Finished tasks wait in memory for the sender's next flush; a stop must not drop them."""
    flushes: list[int] = []
    sender = WebhookSender(None, lambda _id: None, lambda _id: True, lambda: False, _Settings(),
                           flush=lambda: flushes.append(1) or 0)
    sender._stop.set()  # stopped before any pass: only the flush on the way out can run
    sender._loop()
    assert flushes == [1]
