"""The website in a real browser (Debian Chromium via Playwright) against a real cluster.

The `cluster` fixture (tests/fixtures/cluster.py) starts a judicator, an executor and a gateway
as processes; every page talks to the gateway's public HTTP API only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.gateway.website.helpers import TIMEOUT, new_user, node_name, search, wait_status, zip_of

pytestmark = pytest.mark.integration

SUCCESS, CANCELLED, RUNNING = 5, 7, 3
RUN_SH = 'read a b\nc=$(cat data/in.txt)\necho "sum $((a + b + c))"\n'


def row_ids(page: Any) -> list[str]:
    return list(page.locator("#tasks tbody tr[data-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    ))


def test_submit_zip_upload_reaches_success(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    user = new_user()
    source = zip_of({"run.sh": RUN_SH})
    data = zip_of({"in.txt": "10\n"})
    watched.goto(f"{cluster.gateway_url}/submit")
    page.get_by_label("User id").fill(str(user))
    page.locator("input[name=compile_source_mode][value=zip]").check()
    page.get_by_label("Source zip").set_input_files(
        {"name": "source.zip", "mimeType": "application/zip", "buffer": source}
    )
    page.get_by_label("Compile command").fill("chmod +x run.sh")
    page.get_by_label("Input (standard input)").fill("2 3")
    page.locator("input[name=execute_data_mode][value=zip]").check()
    page.get_by_label("Data zip (unpacked into data/)").set_input_files(
        {"name": "data.zip", "mimeType": "application/zip", "buffer": data}
    )
    page.get_by_label("Execute command").fill("sh run.sh")
    page.get_by_label("Execute timeout (s)").fill("10")
    page.get_by_label("Expected output (stored, not used to run)").fill("sum 15")
    page.get_by_label("Memory (bytes)").fill("268435456")
    page.get_by_role("button", name="Submit task").click()

    page.wait_for_url(re.compile(r"/tasks/[0-9a-f]{24}$"))
    task_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#status [data-status='5']")
    assert page.locator("pre[data-file=execute_output]").text_content() == "sum 15\n"
    assert page.locator("pre[data-file=execute_standard]").text_content() == "sum 15"
    assert "268435456 bytes" in page.locator("#execute").inner_text()
    assert page.locator("#cancel").is_hidden()
    step = page.locator("dl[data-step=Execute]").inner_text()
    assert "exit code 0" in step and "Wall time" in step and "Peak memory" in step
    # Both zips link to the API's downloads, byte for byte what was uploaded.
    for name, content in (("compile_source", source), ("execute_data", data)):
        href = page.locator(f"a[href*='file={name}']").get_attribute("href")
        assert href == f"/api/task?id={task_id}&file={name}"
        assert requests.get(cluster.gateway_url + href, timeout=TIMEOUT).content == content
    answer = search(cluster.gateway_url, user=user)
    assert [t["id"] for t in answer["tasks"]] == [task_id]
    assert watched.problems() == []


def test_bad_field_shows_invalid_input_and_adds_nothing(cluster: Any, open_page: Any) -> None:
    watched = open_page()
    page = watched.page
    user = new_user()
    watched.goto(f"{cluster.gateway_url}/submit")
    page.get_by_label("User id").fill(str(user))
    page.get_by_label("Compile command").fill("true")
    page.get_by_label("Execute command").fill("true")
    page.get_by_label("Compile timeout (s)").fill("ten")
    page.get_by_role("button", name="Submit task").click()

    message = page.locator("#message[data-kind=error]")
    message.wait_for()
    text = message.inner_text()
    assert "Invalid input (result 4)" in text and "Compile timeout" in text, text
    assert page.get_by_label("Compile timeout (s)").get_attribute("aria-invalid") == "true"
    assert page.url.endswith("/submit")
    assert search(cluster.gateway_url, user=user) == {"result": 0, "pages": 0, "tasks": []}
    assert watched.problems() == []


def test_cancel_long_task_from_tasks_page(cluster: Any, open_page: Any) -> None:
    user = new_user()
    task_id = cluster.submit(user=user, execute_command="sleep 300", execute_timeout=0)
    wait_status(cluster, task_id, {RUNNING})
    watched = open_page()
    page = watched.page
    watched.goto(f"{cluster.gateway_url}/?user={user}")
    row = page.locator(f"#tasks tbody tr[data-id='{task_id}']")
    assert row.locator("[data-status='3']").inner_text().strip() == "⟳ Running"
    row.get_by_role("button", name=f"Cancel task {task_id}").click()
    row.locator("[data-status='7']").wait_for()
    assert "Cancelled" in row.inner_text()
    assert row.get_by_role("button").count() == 0
    assert page.locator("#message").inner_text() == f"Task {task_id} cancelled."
    assert cluster.get(task_id)["task"]["status"] == CANCELLED
    # The row links to its task page, which shows it cancelled too.
    row.get_by_role("link", name=task_id).click()
    page.wait_for_url(f"**/tasks/{task_id}")
    page.wait_for_selector("#status [data-status='7']")
    assert watched.problems() == []


def test_search_by_user_and_page_through(cluster: Any, open_page: Any) -> None:
    user = new_user()
    ids = [cluster.submit(user=user) for _ in range(25)]
    watched = open_page()
    page = watched.page
    watched.goto(cluster.gateway_url + "/")
    # By keyboard: type the user, pick 10 per page, Enter submits the search.
    page.get_by_label("User").fill(str(user))
    page.get_by_label("Per page").select_option("10")
    page.get_by_label("User").press("Enter")
    page.wait_for_url(re.compile(rf"[?&]user={user}(&|$)"))
    watched.wait_ready()

    seen: list[str] = []
    for number, size in ((1, 10), (2, 10), (3, 5)):
        assert page.locator("#page-info").inner_text() == f"Page {number} of 3"
        page_ids = row_ids(page)
        assert len(page_ids) == size
        seen += page_ids
        if number < 3:
            page.get_by_role("link", name="Next →").click()
            page.wait_for_url(re.compile(rf"[?&]page={number + 1}(&|$)"))
            watched.wait_ready()
    assert page.get_by_role("link", name="Next →").get_attribute("aria-disabled") == "true"
    assert seen == ids[::-1]  # newest first

    # Reloading a bookmarked view gives the same page; oldest first reverses the order.
    page.reload()
    watched.wait_ready()
    assert row_ids(page) == ids[::-1][20:]
    watched.goto(f"{cluster.gateway_url}/?user={user}&order=old&per_page=10")
    assert row_ids(page) == ids[:10]
    assert page.get_by_label("Order").input_value() == "old"
    # A time range before every task matches none; one that covers them matches all.
    watched.goto(f"{cluster.gateway_url}/?user={user}&end_time=2000-01-01T00:00:00")
    assert row_ids(page) == [] and "No tasks match." in page.locator("#tasks").inner_text()
    watched.goto(f"{cluster.gateway_url}/?user={user}&start_time=2000-01-01T00:00:00&per_page=50")
    assert sorted(row_ids(page)) == sorted(ids)
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


PAGES = ("tasks", "submit", "task", "executors", "judicators")


@pytest.mark.parametrize("width", [375, 1280])
def test_every_page_fits_and_has_no_errors(
    cluster: Any, open_page: Any, screenshot_dir: Path, width: int
) -> None:
    task_id = cluster.submit(
        user=new_user(), compile_source_name="main.sh", compile_source_str=RUN_SH,
        compile_command="bash -n main.sh", execute_data_name="in.txt", execute_data_str="10",
        execute_input="2 3", execute_command="bash main.sh", execute_standard="sum 15",
    )
    assert cluster.wait_done(task_id)["status"] == SUCCESS
    watched = open_page(width=width)
    page = watched.page
    paths = dict(zip(PAGES, ("/", "/submit", f"/tasks/{task_id}", "/executors", "/judicators"),
                     strict=True))
    for name, path in paths.items():
        watched.goto(cluster.gateway_url + path)
        if name == "task":
            page.wait_for_selector("#status [data-status='5']")
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
        if reached[-1] == "submit":
            break
    assert reached[-1] == "submit", reached
    for wanted in ("user", "compile_source_name", "compile_command", "execute_timeout",
                   "execute_output_limit"):
        assert wanted in reached, reached
