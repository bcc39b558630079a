"""The website in front of a gateway with API keys on: the pages ask for a key, keep it in the
tab (sessionStorage) and send it as a Bearer token; a task page then polls (EventSource cannot
send the header). The problems pages read with any key; a submit key's upload, delete and
rejudge are refused by the server, and the page says so."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.gateway.website.helpers import TIMEOUT, groups_package, new_user, zip_file

pytestmark = pytest.mark.integration


def make_key(path: Path, user: int, role: str) -> str:
    done = subprocess.run([sys.executable, "-m", "khala", "keys", "--file", str(path), "add",
                           "--user", str(user), "--role", role],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("keyed")
    keys_file = tmp / "keys.toml"
    user = new_user()
    keys = {"admin": make_key(keys_file, 1, "admin"), "read": make_key(keys_file, 2, "read"),
            "setter": make_key(keys_file, 3, "setter"),
            "submit": make_key(keys_file, user, "submit"), "user": str(user)}
    built = Cluster(tmp)
    try:
        built.start_judicator()
        built.start_executor(slots=2)
        built.start_gateway(keys_file=keys_file)
        yield built, keys
    finally:
        built.stop()


def test_pages_ask_for_a_key_and_use_it(keyed: tuple[Cluster, dict[str, str]],
                                        open_page: Any) -> None:
    cluster, keys = keyed
    reply = requests.post(f"{cluster.gateway_url}/api/v2/tasks", timeout=TIMEOUT,
                          headers={"Authorization": f"Bearer {keys['admin']}"},
                          json={"user": int(keys["user"]), "compile": {"command": "true"},
                                "execute": {"command": "echo keyed"}})
    assert reply.status_code == 201, reply.text
    task_id = reply.json()["data"]["id"]
    watched = open_page()
    page = watched.page
    page.goto(f"{cluster.gateway_url}/?user={keys['user']}")
    form = page.locator("#key-form")
    form.wait_for()
    assert page.locator("#key-note").inner_text() == "This gateway needs an API key."
    page.get_by_label("API key (kept in this browser tab only)").fill(keys["read"])
    page.get_by_role("button", name="Use this key").click()
    page.locator(f"#tasks tbody tr[data-id='{task_id}']").wait_for()
    assert form.is_hidden()
    page.locator(f"#tasks tbody tr[data-id='{task_id}'] a").click()
    page.wait_for_url(f"**/tasks/{task_id}")
    page.wait_for_selector("#verdict [data-status='5']")
    assert page.locator("pre[data-stream='execute.stdout']").text_content() == "keyed\n"
    # the browser logged the first, keyless answers (401) itself; nothing else went wrong
    assert all("401" in p for p in watched.problems()), watched.problems()


def use_key(watched: Any, url: str, key: str) -> None:
    """Open `url`, give the key the page asks for, and wait for the page with it."""
    page = watched.page
    page.goto(url)
    page.locator("#key-form").wait_for()
    page.get_by_label("API key (kept in this browser tab only)").fill(key)
    page.get_by_role("button", name="Use this key").click()
    watched.wait_ready()


def test_a_submit_key_reads_problems_but_may_not_change_them(
        keyed: tuple[Cluster, dict[str, str]], open_page: Any) -> None:
    cluster, keys = keyed
    base = cluster.gateway_url
    setter = {"Authorization": f"Bearer {keys['setter']}"}
    problem = f"keyed-{uuid.uuid4().hex[:8]}"
    made = requests.post(f"{base}/api/v2/problems", json={"id": problem, "title": "Keyed"},
                         headers=setter, timeout=TIMEOUT)
    assert made.status_code == 201, made.text
    added = requests.post(f"{base}/api/v2/problems/{problem}/versions", data=groups_package(),
                          headers={**setter, "Content-Type": "application/zip"},
                          timeout=TIMEOUT)
    assert added.status_code == 201, added.text

    watched = open_page()
    page = watched.page
    use_key(watched, f"{base}/problems/{problem}", keys["submit"])
    assert page.locator("#title").inner_text() == "Keyed"
    v1 = page.locator("section.version[data-version='1']")
    assert v1.locator(".cases").inner_text() == "4"

    refused = f"Refused (HTTP 403): a submit key may not POST /api/v2/problems/{problem}"
    page.locator("#upload").get_by_label("Package (zip)").set_input_files(
        zip_file("again.zip", groups_package(big_answer="1")))
    page.locator("#upload").get_by_role("button", name="Upload").click()
    note = page.locator("#up-message[data-kind='error']")
    note.wait_for()
    assert note.inner_text() == f"{refused}/versions. No version was added."

    v1.get_by_role("button", name="Delete version 1").click()
    v1.get_by_role("button", name="Really delete version 1? Click again").click()
    note = page.locator("#version-message[data-kind='error']")
    note.wait_for()
    assert note.inner_text() == (f"Refused (HTTP 403): a submit key may not DELETE "
                                 f"/api/v2/problems/{problem}/versions/1. Version 1 is kept.")

    page.get_by_role("button", name="Rejudge").click()
    note = page.locator("#rj-message[data-kind='error']")
    note.wait_for()
    assert note.inner_text() == f"{refused}/rejudges. No rejudge was started."
    # the page offers the key form again, saying why
    assert page.locator("#key-note").inner_text() == (
        "This API key may not do that: enter another one.")

    # a new problem from the list page is refused too, before anything is uploaded
    page.goto(f"{base}/problems")
    watched.wait_ready()
    assert page.locator(f"#problems tbody tr[data-id='{problem}']").count() == 1
    page.get_by_label("Problem id").fill(f"{problem}-new")
    page.get_by_label("Package (zip)").set_input_files(zip_file("new.zip", groups_package()))
    page.get_by_role("button", name="Upload").click()
    note = page.locator("#up-message[data-kind='error']")
    note.wait_for()
    assert note.inner_text() == ("Refused (HTTP 403): a submit key may not POST "
                                 "/api/v2/problems. Nothing was uploaded.")

    # nothing changed on the server
    after = requests.get(f"{base}/api/v2/problems", headers=setter, timeout=TIMEOUT).json()
    mine = [p for p in after["data"] if p["id"].startswith(problem)]
    assert [(p["id"], [v["version"] for v in p["versions"]]) for p in mine] == [(problem, [1])]
    rejudges = requests.get(f"{base}/api/v2/problems/{problem}/rejudges", headers=setter,
                            timeout=TIMEOUT).json()["data"]
    assert rejudges == []
    # the browser logged the keyless first answer (401) and the refusals (403) itself
    assert all("401" in p or "403" in p for p in watched.problems()), watched.problems()
