"""The website in front of a gateway with API keys on: the pages ask for a key, keep it in the
tab (sessionStorage) and send it as a Bearer token; a task page then polls (EventSource cannot
send the header)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.cluster import Cluster
from tests.gateway.website.helpers import TIMEOUT, new_user

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
            "user": str(user)}
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
