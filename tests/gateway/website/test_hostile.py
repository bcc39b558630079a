"""Hostile task text in a real browser: a task whose source, commands, input, outputs and
expected output carry <script>, <img onerror=…> and javascript: links is shown as text on every
page, and none of its script runs. Every payload calls khalaPwned (a binding the test exposes)
or alert(): the test fails on any call, any dialog, and any console error (a CSP violation
would be one), and checks the DOM holds no element made from the payload.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.gateway.website.helpers import TIMEOUT, new_user, submit_v2, wait_v2
from tests.problems.packages import zipped

pytestmark = pytest.mark.integration

PAYLOAD = (
    "<script>khalaPwned('script');alert('script')</script>"
    "<img src=x onerror=\"khalaPwned('img');alert('img')\">"
    "<a href=\"javascript:khalaPwned('link')\">click me</a>"
    "<svg onload=\"khalaPwned('svg')\"></svg>"
)
# Markup nowhere on the pages' own templates inside <main>; any of it would come from data.
FORBIDDEN = "main script, main img, main svg, main iframe, main a[href^='javascript:' i]"
SOURCE = "print(input() + '<b>')\n# " + PAYLOAD


def hostile_tasks(base: str) -> tuple[str, str]:
    """A command task whose commands, input, source and outputs carry the payload, and a judged
    one whose cases (input, expected output) and output do (a wrong answer: its diff shows
    both)."""
    user = new_user()
    plain = submit_v2(base, {
        "user": user,
        "compile": {"command": f"true # {PAYLOAD}",
                    "files": [{"path": "main.txt", "content": PAYLOAD}]},
        "execute": {"command": f"cat; cat main.txt >&2 # {PAYLOAD}", "input": PAYLOAD,
                    "standard": PAYLOAD}})
    judged_ref = submit_v2(base, {
        "user": user,
        "compile": {"language": "python3", "files": [{"path": "main.py", "content": SOURCE}]},
        "execute": {"cases": [{"input": PAYLOAD, "standard": PAYLOAD}]}})
    return plain, judged_ref


def test_hostile_text_is_shown_as_text_everywhere(cluster: Any, open_page: Any) -> None:
    plain, judged_ref = hostile_tasks(cluster.gateway_url)
    base = cluster.gateway_url
    assert wait_v2(base, plain)["status"] == "success"
    assert wait_v2(base, judged_ref)["result"]["judgement"]["verdict"] == "wrong_answer"
    watched = open_page()
    page = watched.page
    for path in ("/", "/submit", "/executors", "/judicators"):
        watched.goto(base + path)
        assert page.locator(FORBIDDEN).count() == 0, path

    watched.goto(f"{base}/tasks/{plain}")
    page.wait_for_selector("#source code[data-highlighted], #source pre.code")
    for stream in ("execute.stdout", "execute.stderr"):
        assert page.locator(f"pre[data-stream='{stream}']").text_content() == PAYLOAD
    assert page.locator("#source pre.code").text_content() == PAYLOAD
    details = page.locator("#details").inner_text()
    assert f"true # {PAYLOAD}" in details and f"cat main.txt >&2 # {PAYLOAD}" in details
    assert page.locator(FORBIDDEN).count() == 0  # with everything on the page

    watched.goto(f"{base}/tasks/{judged_ref}")
    page.wait_for_selector("#source code[data-highlighted='true']")
    diff = page.locator("#cases .diff").inner_text()
    assert PAYLOAD in diff and PAYLOAD + "<b>" in diff
    assert page.locator("#source code").text_content() == SOURCE
    assert page.locator(FORBIDDEN).count() == 0
    # Click what a careless page might have made into links or images.
    for pre in page.locator("pre:visible").all():
        pre.click()
    # The payload's alert/handlers had every chance; give pending events a turn to run.
    page.evaluate("new Promise(r => setTimeout(r, 200))")
    assert watched.problems() == []


def test_hostile_problem_text_is_shown_as_text(cluster: Any, open_page: Any) -> None:
    """A problem whose title and extra file's name carry the payload, on both problems pages."""
    base = cluster.gateway_url
    problem = f"hostile-{uuid.uuid4().hex[:8]}"
    made = requests.post(f"{base}/api/v2/problems", json={"id": problem, "title": PAYLOAD},
                         timeout=TIMEOUT)
    assert made.status_code == 201, made.text
    extra = "files/<img src=x onerror=khalaPwned(1)>.h"
    package = zipped({"problem.toml": b'title = "t"\n', "tests/1.in": b"1\n",
                      "tests/1.ans": b"1\n", extra: PAYLOAD.encode()})
    added = requests.post(f"{base}/api/v2/problems/{problem}/versions", data=package,
                          headers={"Content-Type": "application/zip"}, timeout=TIMEOUT)
    assert added.status_code == 201, added.text
    watched = open_page()
    page = watched.page
    watched.goto(f"{base}/problems")
    row = page.locator(f"#problems tbody tr[data-id='{problem}']")
    assert row.locator("td").nth(1).text_content() == PAYLOAD
    assert page.locator(FORBIDDEN).count() == 0
    watched.goto(f"{base}/problems/{problem}")
    assert page.locator("#title").text_content() == PAYLOAD
    assert extra.removeprefix("files/") in page.locator("section.version").inner_text()
    assert page.locator(FORBIDDEN).count() == 0
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
