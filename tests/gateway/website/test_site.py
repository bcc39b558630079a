"""The website in a real browser (Debian Chromium via Playwright) against a real cluster.

The `cluster` fixture (tests/fixtures/cluster.py) starts a judicator, an executor with the real
sandbox and every language this host has, and a gateway, as processes; the pages talk to the
gateway's public API only (API v2 for tasks).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.waiting import named_process, until
from tests.gateway.website.helpers import (
    A_PLUS_B,
    A_TIMES_B,
    TIMEOUT,
    groups_package,
    judged,
    new_user,
    node_name,
    submit_v2,
    wait_v2,
    zip_of,
)

pytestmark = pytest.mark.integration

TWO_CASES = [("1 2", "3"), ("2 3", "5")]


def row_ids(page: Any) -> list[str]:
    return list(page.locator("#tasks tbody tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    ))


def fill_judge_form(page: Any, user: int, source: str, cases: list[tuple[str, str]]) -> None:
    page.get_by_label("Language").select_option("c")
    assert page.get_by_label("File name").input_value() == "main.c"  # filled by the language
    page.get_by_label("Source code").fill(source)
    for number, (given, expected) in enumerate(cases, 1):
        if number > 1:
            page.get_by_role("button", name="Add a case").click()
        page.get_by_label(f"Case {number} input").fill(given)
        page.get_by_label(f"Case {number} expected output").fill(expected)
    page.get_by_label("Time limit (s)").fill("1.5")
    page.get_by_label("Memory limit (MiB)").fill("128")
    page.get_by_label("User id").fill(str(user))


def open_submitted(page: Any) -> str:
    page.get_by_role("button", name="Submit", exact=True).click()
    page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{24}$"))
    return str(page.url.rsplit("/", 1)[1])


def test_judge_a_plus_b_accepted_through_the_form(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    user = new_user()
    watched.goto(f"{cluster.gateway_url}/submit")
    fill_judge_form(page, user, A_PLUS_B, TWO_CASES)
    task_id = open_submitted(page)

    page.wait_for_selector("#verdict [data-verdict='accepted']", timeout=120_000)
    assert page.locator("#verdict").inner_text().strip() == "✓ Accepted"
    numbers = page.locator("#numbers").inner_text()
    assert "Score\n2 / 2" in numbers and " s" in numbers and "iB" in numbers, numbers
    rows = page.locator("#cases tbody tr")
    rows.nth(1).wait_for()  # the verdict shows first; the cases' rows follow it
    assert rows.count() == 2
    assert [r.get_attribute("data-verdict") for r in rows.all()] == ["accepted", "accepted"]
    # The source, highlighted from Prism's tokens
    page.wait_for_selector("#source code[data-highlighted='true'] .token.keyword")
    assert page.locator("#source code").text_content() == A_PLUS_B
    assert page.locator("#cancel").is_hidden() and page.locator("#live").is_hidden()
    task = requests.get(f"{cluster.gateway_url}/api/v2/tasks/{task_id}", timeout=TIMEOUT).json()
    execute = task["data"]["execute"]
    assert (execute["cpu_limit"], execute["timeout"], execute["memory_limit"]) == (
        1.5, 4, 128 << 20)
    assert watched.problems() == []


def test_wrong_answer_on_case_2_shows_the_diff(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/submit")
    # a * b: right on 2 2 (4), wrong on 2 3 (6, not 5)
    fill_judge_form(page, new_user(), A_TIMES_B, [("2 2", "4"), ("2 3", "5"), ("1 1", "2")])
    open_submitted(page)
    page.wait_for_selector("#verdict [data-verdict='wrong_answer']", timeout=120_000)
    assert page.locator("#verdict").inner_text().strip() == "✗ Wrong answer on case 2"
    assert "Score\n1 / 3" in page.locator("#numbers").inner_text()
    second = page.locator("#cases tbody tr[data-case='2']")
    assert second.get_attribute("data-verdict") == "wrong_answer"
    diff = second.locator(".diff")
    assert diff.locator(".diff-del .diff-text").inner_text() == "5"  # expected
    assert diff.locator(".diff-add .diff-text").inner_text() == "6"  # got
    assert page.locator("#cases tbody tr[data-case='1'] .diff").count() == 0
    assert watched.problems() == []


def test_cases_from_a_zip(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/submit")
    page.get_by_label("Language").select_option("c")
    page.get_by_label("Source code").fill(A_PLUS_B)
    page.get_by_label("A zip of 1.in, 1.out, 2.in, 2.out…").check()
    cases = zip_of({"tests/2.in": "10 20\n", "tests/2.out": "30\n", "tests/1.in": "1 1\n",
                    "tests/1.out": "2\n", "readme.txt": "not a case"})
    page.get_by_label("Cases zip").set_input_files(
        {"name": "cases.zip", "mimeType": "application/zip", "buffer": cases})
    page.locator("#cases-zip-note", has_text="2 cases read.").wait_for()
    task_id = open_submitted(page)
    page.wait_for_selector("#verdict [data-verdict='accepted']", timeout=120_000)
    asked = requests.get(f"{cluster.gateway_url}/api/v2/tasks/{task_id}/cases",
                         timeout=TIMEOUT).json()["data"]
    assert [(c["input"], c["standard"]) for c in asked] == [("1 1\n", "2\n"), ("10 20\n", "30\n")]
    assert watched.problems() == []


def test_an_untouched_form_submits_nothing(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    user = new_user()
    watched.goto(f"{cluster.gateway_url}/submit")
    page.get_by_label("User id").fill(str(user))
    page.get_by_role("button", name="Submit", exact=True).click()
    message = page.locator("#message[data-kind=error]")
    message.wait_for()
    assert "Write the source code" in message.inner_text()
    assert page.get_by_label("Source code").get_attribute("aria-invalid") == "true"
    listed = requests.get(f"{cluster.gateway_url}/api/v2/tasks", params={"user": user},
                          timeout=TIMEOUT).json()["data"]
    assert page.url.endswith("/submit") and listed == []
    assert watched.problems() == []


def test_advanced_commands_and_a_refusal_with_its_reason(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/submit")
    page.get_by_label("Run commands (advanced)").check()
    page.get_by_label("File name").fill("run.sh")
    page.get_by_label("Source code").fill("read a b\necho $((a + b))\n")
    page.get_by_label("Execute command").fill("bash run.sh")
    page.get_by_label("Standard input").fill("20 22")
    page.get_by_label("Time limit (s)").fill("2.5")
    page.get_by_label("Memory limit (MiB)").fill("99999999")  # beyond the policy: refused
    page.get_by_role("button", name="Submit", exact=True).click()
    message = page.locator("#message[data-kind=error]")
    message.wait_for()
    assert "memory_limit" in message.inner_text() and "No task was created" in message.inner_text()
    page.get_by_label("Memory limit (MiB)").fill("64")
    task_id = open_submitted(page)
    page.wait_for_selector("#verdict [data-status='5']", timeout=60_000)
    assert page.locator("#verdict").inner_text().strip() == "✓ Success"
    assert page.locator("pre[data-stream='execute.stdout']").text_content() == "42\n"
    task = wait_v2(cluster.gateway_url, task_id)
    assert task["execute"]["timeout"] == 2.5
    # the browser reports the refused request itself: the one expected console line
    assert watched.problems() == [
        "console: Failed to load resource: the server responded with a status of 422 "
        "(UNPROCESSABLE ENTITY)"]


def test_running_task_shows_live_output_above_the_fold(
    cluster: Any, open_page: Any, screenshot_dir: Path
) -> None:
    # 40 lines, then it runs (a process named `printed`) until told to end: the page is still
    # live however long the browser takes to open it
    printed = f"khala-printed-{uuid.uuid4().hex[:12]}"
    command = (f"trap 'exit 0' USR1; for i in $(seq 1 40); do echo line $i; sleep 0.1; done; "
               f"exec -a {printed} sleep 120 & wait")
    body = {"user": new_user(), "compile": {"command": "true"},
            "execute": {"command": command, "timeout": 150}}
    task_id = submit_v2(cluster.gateway_url, body)
    watched = open_page(width=1280, height=800)
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/tasks/{task_id}")
    live = page.locator("#live-output")
    live.filter(has_text="line 3").wait_for()
    box = live.bounding_box()
    assert box is not None and box["y"] + 40 < 800, box  # its first lines are on the first screen
    page.screenshot(path=str(screenshot_dir / "task-live-1280.png"))
    assert page.locator("#verdict").inner_text().strip() in ("⟳ Running", "⟳ Compiling")
    until(lambda: named_process(printed), 60, "every line printed")
    told = requests.put(f"{cluster.gateway_url}/api/v2/tasks/{task_id}/signals/USR1", timeout=30)
    assert told.status_code == 202, told.text
    page.wait_for_selector("#verdict [data-status='5']", timeout=60_000)
    # At the end one output box: the recorded output replaces the live one.
    assert page.locator("#live").is_hidden()
    expected = "".join(f"line {i}\n" for i in range(1, 41))
    assert page.locator("pre[data-stream='execute.stdout']").text_content() == expected
    assert page.get_by_text("line 40").count() == 1
    assert watched.problems() == []


def test_client_ids_open(cluster: Any, open_page: Any) -> None:
    ref = f"ab-{new_user()}.x_1"
    submit_v2(cluster.gateway_url, judged(A_PLUS_B, TWO_CASES, new_user()), ref)
    wait_v2(cluster.gateway_url, ref)
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/")
    page.get_by_label("Open a task by id").fill(ref)
    page.get_by_label("Open a task by id").press("Enter")
    page.wait_for_url(f"**/tasks/{ref}")
    page.wait_for_selector("#verdict [data-verdict='accepted']")
    assert page.locator("#task-id").inner_text() == ref
    watched.goto(f"{cluster.gateway_url}/tasks/no-such-task")
    assert page.locator("#message").inner_text() == "No task no-such-task."
    watched.goto(f"{cluster.gateway_url}/tasks/bad%20id")
    assert "Not a valid task id" in page.locator("#message").inner_text()
    # the browser reports the unknown task's 404 itself: the one expected console line
    assert watched.problems() == [
        "console: Failed to load resource: the server responded with a status of 404 "
        "(NOT FOUND)"]


def test_list_columns_and_filters(cluster: Any, open_page: Any) -> None:
    user = new_user()
    good = submit_v2(cluster.gateway_url, judged(A_PLUS_B, TWO_CASES, user))
    bad = submit_v2(cluster.gateway_url, judged(A_TIMES_B, [("2 2", "4"), ("2 3", "5")], user))
    plain = submit_v2(cluster.gateway_url, {"user": user, "compile": {"command": "true"},
                                            "execute": {"command": "echo hi"}})
    for ref in (good, bad, plain):
        wait_v2(cluster.gateway_url, ref)
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/?user={user}")
    assert row_ids(page) == [plain, bad, good]
    row = page.locator(f"#tasks tbody tr[data-id='{bad}']")
    cells = row.locator("td").all_inner_texts()
    assert cells[1].strip() == "✗ Wrong answer on case 2" and cells[2] == "c"
    assert cells[3] == "1 / 2" and cells[4].endswith(" s") and cells[5].endswith("iB"), cells
    assert page.locator(f"#tasks tbody tr[data-id='{plain}'] td").nth(2).inner_text() == "command"
    # The verdict filter, chosen by keyboard and kept in the URL
    page.get_by_label("Verdict").select_option("wrong_answer")
    page.get_by_label("User").press("Enter")
    page.wait_for_url(re.compile(r"[?&]verdict=wrong_answer(&|$)"))
    watched.wait_ready()
    assert row_ids(page) == [bad]
    watched.goto(f"{cluster.gateway_url}/?user={user}&verdict=accepted")
    assert row_ids(page) == [good]
    watched.goto(f"{cluster.gateway_url}/?user={user}&status=success&order=oldest")
    assert row_ids(page) == [good, bad, plain]  # success: every task ran; a verdict is apart
    watched.goto(f"{cluster.gateway_url}/?user={user}&status=cancelled")
    assert row_ids(page) == [] and "No tasks match." in page.locator("#tasks").inner_text()
    assert watched.problems() == []


def test_paging_with_next(cluster: Any, open_page: Any) -> None:
    user = new_user()
    ids = [submit_v2(cluster.gateway_url, {"user": user, "compile": {"command": "true"},
                                           "execute": {"command": "true"}}) for _ in range(12)]
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/?user={user}&per_page=10")
    first = row_ids(page)
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"cursor="))
    watched.wait_ready()
    assert first + row_ids(page) == ids[::-1]
    assert page.get_by_role("link", name="Next page").is_hidden()
    assert watched.problems() == []


def test_cancel_long_task_from_tasks_page(cluster: Any, open_page: Any) -> None:
    user = new_user()
    task_id = submit_v2(cluster.gateway_url, {"user": user, "compile": {"command": "true"},
                                              "execute": {"command": "sleep 300"}})
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/?user={user}")
    row = page.locator(f"#tasks tbody tr[data-id='{task_id}']")
    row.get_by_role("button", name=f"Cancel task {task_id}").click()
    row.locator("[data-status='7']").wait_for()
    assert "Cancelled" in row.inner_text() and row.get_by_role("button").count() == 0
    assert page.locator("#message").inner_text() == f"Task {task_id} cancelled."
    row.get_by_role("link", name=task_id).click()
    page.wait_for_url(f"**/tasks/{task_id}")
    page.wait_for_selector("#verdict [data-status='7']")
    assert watched.problems() == []


def test_executors_and_judicators_pages(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    watched.goto(cluster.gateway_url + "/executors")
    name = node_name(cluster.executors[0])
    page.locator("#executors tbody tr", has_text=name).wait_for()
    assert "1 executor at work." in page.locator("#message").inner_text()
    watched.goto(cluster.gateway_url + "/judicators")
    rows = page.locator("#judicators tbody tr")
    assert rows.count() == 1
    assert cluster.judicator_address in rows.inner_text()
    assert watched.problems() == []


@pytest.mark.parametrize("width", [375, 1280])
def test_every_page_fits_and_has_no_errors(
    cluster: Any, open_page: Any, screenshot_dir: Path, width: int
) -> None:
    user = new_user()
    good = submit_v2(cluster.gateway_url, judged(A_PLUS_B, TWO_CASES, user))
    bad = submit_v2(cluster.gateway_url, judged(A_TIMES_B, [("2 2", "4"), ("2 3", "5"),
                                                            ("3 3", "6")], user))
    for ref in (good, bad):
        wait_v2(cluster.gateway_url, ref)
    problem = f"fits-{width}-{uuid.uuid4().hex[:6]}"
    for path, kwargs in (("/api/v2/problems", {"json": {"id": problem, "title": "Sum"}}),
                         (f"/api/v2/problems/{problem}/versions", {
                             "data": groups_package(),
                             "headers": {"Content-Type": "application/zip"}}),
                         (f"/api/v2/problems/{problem}/rejudges", {"json": {}})):
        reply = requests.post(cluster.gateway_url + path, timeout=TIMEOUT, **kwargs)
        assert reply.status_code in (201, 202), reply.text
    watched = open_page(width=width, height=900 if width > 400 else 800)
    page = watched.page
    paths = {"tasks": f"/?user={user}", "submit": "/submit", "task": f"/tasks/{good}",
             "task-wrong": f"/tasks/{bad}", "executors": "/executors",
             "judicators": "/judicators", "problems": "/problems",
             "problem": f"/problems/{problem}"}
    for name, path in paths.items():
        watched.goto(cluster.gateway_url + path)
        if name.startswith("task-") or name == "task":
            page.wait_for_selector("#source code[data-highlighted='true']")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than {width}px"
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
                 .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label'))
                 .map(e => e.name || e.id)"""
        )
        assert unlabelled == [], f"{path}: inputs without a label: {unlabelled}"
        page.screenshot(path=str(screenshot_dir / f"{name}-{width}.png"), full_page=True)
    assert watched.problems() == []


def test_submit_page_reachable_by_keyboard(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    watched.goto(cluster.gateway_url + "/submit")
    reached: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.name"))
        if reached[-1] == "submit-button":
            break
    assert reached[-1] == "submit-button", reached
    for wanted in ("language", "source", "case-1-input", "case-1-output", "add-case",
                   "time-limit", "memory-limit", "user"):
        assert wanted in reached, reached


def test_a_cancelled_task_keeps_its_output(cluster: Any, open_page: Any) -> None:
    body = {"user": new_user(), "compile": {"command": "true"},
            "execute": {"command": "echo first; echo err >&2; sleep 1000", "timeout": 600}}
    task_id = submit_v2(cluster.gateway_url, body)
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/tasks/{task_id}")
    page.locator("#live-output").filter(has_text="first").wait_for()  # it ran that far
    page.get_by_role("button", name="Cancel task").click()
    page.wait_for_selector("#verdict [data-status='7']")
    # the output it had comes from its executor moments later, and the page shows it
    page.locator("pre[data-stream='execute.stdout']").wait_for()
    assert page.locator("pre[data-stream='execute.stdout']").text_content() == "first\n"
    assert page.locator("pre[data-stream='execute.stderr']").text_content() == "err\n"
    task = wait_v2(cluster.gateway_url, task_id)
    assert task["status"] == "cancelled"
    assert task["result"]["execute"]["reason"] == "cancelled", task["result"]
    seed = requests.get(f"{cluster.gateway_url}/api/task", params={"id": task_id},
                        timeout=TIMEOUT).json()["task"]
    assert seed["status"] == 7 and seed["result"]["execute_output"] == "first\n"
    assert watched.problems() == []
