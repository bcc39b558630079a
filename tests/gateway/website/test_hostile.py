"""Hostile task text in a real browser: a task whose source, commands, input, outputs and
expected output carry <script>, <img onerror=…> and javascript: links is shown as text on every
page, and none of its script runs. Every payload calls khalaPwned (a binding the test exposes)
or alert(): the test fails on any call, any dialog, and any console error (a CSP violation
would be one), and checks the DOM holds no element made from the payload.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.website.helpers import new_user

pytestmark = pytest.mark.integration

PAYLOAD = (
    "<script>khalaPwned('script');alert('script')</script>"
    "<img src=x onerror=\"khalaPwned('img');alert('img')\">"
    "<a href=\"javascript:khalaPwned('link')\">click me</a>"
    "<svg onload=\"khalaPwned('svg')\"></svg>"
)
# Markup nowhere on the pages' own templates inside <main>; any of it would come from data.
FORBIDDEN = "main script, main img, main svg, main iframe, main a[href^='javascript:' i]"
TEXTS = ("compile_command", "execute_input", "execute_command", "execute_standard",
         "execute_output", "execute_error")


def hostile_task(cluster: Any) -> str:
    # Commands carry the payload in a shell comment; the output echoes the input (the payload);
    # the error stream is the hostile source file.
    return cluster.submit(
        user=new_user(),
        compile_source_name="main.txt",
        compile_source_str=PAYLOAD,
        compile_command=f"true # {PAYLOAD}",
        execute_input=PAYLOAD,
        execute_command=f"cat; cat main.txt >&2 # {PAYLOAD}",
        execute_standard=PAYLOAD,
    )


def test_hostile_text_is_shown_as_text_everywhere(cluster: Any, open_page: Any) -> None:
    task_id = hostile_task(cluster)
    task = cluster.wait_done(task_id)
    assert task["result"]["execute_output"] == PAYLOAD, task
    watched = open_page()
    page = watched.page
    for path in ("/", f"/?id={task_id}", "/submit", "/executors", "/judicators"):
        watched.goto(cluster.gateway_url + path)
        assert page.locator(FORBIDDEN).count() == 0, path

    watched.goto(f"{cluster.gateway_url}/tasks/{task_id}")
    page.wait_for_selector("#status [data-status='5']")
    assert page.locator(FORBIDDEN).count() == 0
    for name in TEXTS:
        text = page.locator(f"pre[data-file={name}]").text_content() or ""
        assert PAYLOAD in text, (name, text)
    # Hover and click what a careless page might have made into links or images.
    for pre in page.locator("pre").all():
        pre.click()
    # The payload's alert/handlers had every chance; give pending events a turn to run.
    page.evaluate("new Promise(r => setTimeout(r, 200))")
    assert watched.problems() == []


def test_pages_send_a_strict_csp(cluster: Any, open_page: Any) -> None:
    """The CSP itself, seen by the browser: an inline script injected into the live page is
    refused (and reported as a console error), so even a markup bug could not run a payload."""
    watched = open_page()
    page = watched.page
    response = page.goto(cluster.gateway_url + "/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    watched.wait_ready()
    page.evaluate(
        """() => { const d = document.createElement('div');
                   d.innerHTML = '<img src=x onerror="khalaPwned(1)">';
                   document.body.append(d); }"""
    )
    page.wait_for_function("document.querySelector('div > img[src=x]') !== null")
    page.evaluate("new Promise(r => setTimeout(r, 300))")
    assert watched.pwned == []
    assert any("Content Security Policy" in e for e in watched.errors), watched.errors
