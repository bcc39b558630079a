"""The problems pages in a real browser against a real cluster (the site's `cluster` fixture):
a package uploaded through the page shows its groups, limits and case counts; tasks submitted
against it (API v2) are judged; a version tasks were judged against cannot be deleted (the
server's reason on the page); a new version uploaded through the page changes the tests; a
rejudge started on the page is watched, live, until done, with the verdict that moved."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.gateway.website.helpers import (
    A_PLUS_B,
    A_TIMES_B,
    TIMEOUT,
    groups_package,
    new_user,
    zip_file,
)

pytestmark = pytest.mark.integration

def submit(base: str, problem: str, source: str, user: int) -> str:
    body = {"user": user, "compile": {"language": "c",
                                      "files": [{"path": "main.c", "content": source}]},
            "execute": {"problem": {"id": problem}}}
    reply = requests.post(f"{base}/api/v2/tasks", json=body, timeout=TIMEOUT)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["data"]["id"])


def judged(base: str, task_id: str) -> dict[str, Any]:
    for _ in range(40):
        reply = requests.get(f"{base}/api/v2/tasks/{task_id}", params={"wait": 10},
                             timeout=TIMEOUT)
        if reply.status_code == 200 and reply.json()["data"]["done"]:
            return reply.json()["data"]  # type: ignore[no-any-return]
    raise AssertionError(f"task {task_id} not done: {reply.text}")


def verdict(task: dict[str, Any]) -> str:
    return str(task["result"]["judgement"]["verdict"])


def test_upload_view_change_and_rejudge_a_problem(cluster: Cluster, open_page: Any) -> None:
    base = cluster.gateway_url
    problem = f"sum-{uuid.uuid4().hex[:8]}"
    watched = open_page()
    page = watched.page
    watched.goto(f"{base}/problems")
    page.get_by_label("Problem id").fill(problem)
    page.get_by_label("Title (a new problem)").fill("Sum in groups")
    page.get_by_label("Package (zip)").set_input_files(zip_file("sum.zip", groups_package()))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(f"**/problems/{problem}")
    watched.wait_ready()

    v1 = page.locator("section.version[data-version='1']")
    assert "latest" in v1.locator("h3").inner_text()
    assert v1.locator(".cases").inner_text() == "4"
    assert v1.locator(".factors").inner_text() == "python3 × 2"
    assert v1.locator(".checker").inner_text() == "none: the outputs are compared"
    assert v1.locator(".interactor").inner_text() == "none"
    assert "1.5 s CPU per case" in v1.inner_text() and "64.0 MiB" in v1.inner_text()
    rows = [[c.inner_text() for c in r.locator("td").all()]
            for r in v1.locator("table.groups tbody tr").all()]
    assert rows == [["small", "40", "sum of its cases", "—", "2"],
                    ["big", "60", "all or nothing (min)", "small", "2"]]
    v1.get_by_text("Show the 4 cases").click()
    v1.locator(".case-list ol").wait_for()
    assert v1.locator(".case-list li").all_inner_texts() == [
        "small/1 (group small): input 4 B, answer 2 B",
        "small/2 (group small): input 4 B, answer 2 B",
        "big/1 (group big): input 8 B, answer 4 B", "big/2 (group big): input 10 B, answer 5 B"]
    # the list page shows it too
    listed = requests.get(f"{base}/api/v2/problems/{problem}", timeout=TIMEOUT).json()["data"]
    assert listed["title"] == "Sum in groups" and listed["latest"] == 1

    user = new_user()
    right = submit(base, problem, A_PLUS_B, user)
    wrong = submit(base, problem, A_TIMES_B, user)
    first = judged(base, right)
    assert verdict(first) == "accepted" and first["result"]["judgement"]["score"] == 100
    assert verdict(judged(base, wrong)) == "wrong_answer"

    # version 1 is what the tasks were judged against: the server refuses, the page says why
    v1.get_by_role("button", name="Delete version 1").click()
    v1.get_by_role("button", name="Really delete version 1? Click again").click()
    note = page.locator("#version-message[data-kind='error']")
    note.wait_for()
    assert note.inner_text().startswith("Refused (HTTP 409): ")
    assert note.inner_text().endswith("Version 1 is kept.")
    assert page.locator("section.version[data-version='1']").count() == 1

    # a second version whose last big case expects another answer
    page.locator("#upload").get_by_label("Package (zip)").set_input_files(
        zip_file("sum2.zip", groups_package(big_answer="3001")))
    page.locator("#upload").get_by_role("button", name="Upload").click()
    page.locator("#up-message[data-kind='success']").wait_for()
    assert page.locator("#up-message").inner_text() == "Version 2 stored."
    v2 = page.locator("section.version[data-version='2']")
    assert "latest" in v2.locator("h3").inner_text()
    assert "latest" not in page.locator("section.version[data-version='1'] h3").inner_text()

    # rejudge from the page and watch it end there, without reloading
    page.get_by_role("button", name="Rejudge").click()
    page.locator("#rj-message[data-kind='success']").wait_for()
    rid = page.locator("#rj-message").inner_text().split()[1]
    row = page.locator(f"#rejudges tbody tr[data-id='{rid}']")
    row.locator("xpath=self::*[@data-state='done']").wait_for(timeout=120_000)
    progress = row.locator("td.progress")
    assert (progress.get_attribute("data-done"), progress.get_attribute("data-total"),
            progress.get_attribute("data-queued"), progress.get_attribute("data-running")) == (
        "2", "2", "0", "0")
    assert progress.inner_text().strip() == "2 of 2 done · 0 running · 0 queued"
    assert "version 2" in row.inner_text() and "every task" in row.inner_text()
    moved = row.locator("td.changes li")
    assert moved.count() == 1
    assert moved.inner_text() == "Accepted → Wrong answer: 1 task"
    assert (moved.get_attribute("data-before"), moved.get_attribute("data-after")) == (
        "accepted", "wrong_answer")

    again = judged(base, right)
    assert verdict(again) == "wrong_answer" and again["execute"]["problem"]["judged"] == 2
    assert [h["judgement"]["verdict"] for h in again["history"]] == ["accepted"]

    # the task's page shows its score per group: small still passes, big (all or nothing)
    # fails on its second case now
    watched.goto(f"{base}/tasks/{right}")
    watched.wait_ready()
    groups = [[c.inner_text().strip() for c in r.locator("td").all()]
              for r in page.locator("#groups tbody tr").all()]
    assert groups == [["small", "✓ Accepted", "40 / 40", "1, 2"],
                      ["big", "✗ Wrong answer", "0 / 60", "3, 4"]], groups
    assert page.locator("#numbers").inner_text().count("40 / 100") == 1
    assert f"{problem}, version 2" in page.locator("#details").inner_text()
    # the browser logged the refused DELETE (409) itself; nothing else went wrong
    assert all("409" in p for p in watched.problems()), watched.problems()


def test_problems_list_and_unknown_ids(cluster: Cluster, open_page: Any) -> None:
    base = cluster.gateway_url
    problem = f"list-{uuid.uuid4().hex[:8]}"
    made = requests.post(f"{base}/api/v2/problems", json={"id": problem, "title": "Listed"},
                         timeout=TIMEOUT)
    assert made.status_code == 201, made.text
    added = requests.post(f"{base}/api/v2/problems/{problem}/versions", data=groups_package(),
                          headers={"Content-Type": "application/zip"}, timeout=TIMEOUT)
    assert added.status_code == 201, added.text
    watched = open_page()
    page = watched.page
    watched.goto(f"{base}/problems")
    row = page.locator(f"#problems tbody tr[data-id='{problem}']")
    assert [c.inner_text() for c in row.locator("td").all()] == [
        problem, "Listed", "1", "4", "2", "1.5 s", "64.0 MiB", "1"]
    row.get_by_role("link", name=problem).click()
    page.wait_for_url(f"**/problems/{problem}")
    watched.wait_ready()
    assert page.locator("#title").inner_text() == "Listed"
    assert page.locator("#rejudges tbody").inner_text() == "No rejudge yet."
    # a bad id is refused in the browser; an unknown one is the server's 404
    watched.goto(f"{base}/problems")
    page.get_by_label("Problem id").fill("no/such")
    page.get_by_role("button", name="Upload").click()
    assert page.locator("#up-message").inner_text().startswith("A problem id is 1 to 64")
    watched.goto(f"{base}/problems/nothing-{uuid.uuid4().hex[:6]}")
    assert page.locator("#message").inner_text().startswith("No problem nothing-")
    watched.goto(f"{base}/problems/bad%20id")
    assert page.locator("#message").inner_text().startswith("Not a valid problem id")
    assert all("404" in p for p in watched.problems()), watched.problems()
