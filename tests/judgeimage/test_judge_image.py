"""The judge image (images/judge.toml) through a real cluster: imported with `khala image
import`, offered by an executor whose `images` setting names it, every language listed by
/api/v2/languages with the image, its version, source file and time factor, and A+B judged in
every language (three right answers, one wrong one). Its warm build caches and presets cannot
be written by a task. Skipped until `make images` has built the image."""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests

from tests.judgeimage.conftest import IMPORT_SECONDS, OFFER_SECONDS, JudgeCluster
from tests.judgeimage.image import MISSING, present, recipe
from tests.judgeimage.programs import A_PLUS_B, CASES, VERDICTS
from tests.problems import helpers as h

# The first test also waits for the cluster: a tar of gigabytes imported, fetched and unpacked
# (3–5 minutes here, longer on a loaded machine), more than the suite's 300 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not present(), reason=MISSING),
              pytest.mark.timeout(IMPORT_SECONDS + OFFER_SECONDS)]

LANGUAGES = [x.name for x in recipe().languages]
# Rounds of A+B in every language in one cluster (setting one up takes minutes): loop the
# judging with KHALA_JUDGE_ROUNDS=10.
ROUNDS = int(os.environ.get("KHALA_JUDGE_ROUNDS", "1"))
COMPILE_SECONDS = 120  # kotlinc and ghc on a loaded machine


def submit(url: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{url}/api/v2/tasks", json=body, timeout=60)
    assert answer.status_code == 201, answer.text
    return h.finished(url, answer.json()["data"]["id"], timeout=900)


def test_every_language_is_offered_with_the_image(judge: JudgeCluster) -> None:
    assert len(LANGUAGES) >= 15 and sorted(A_PLUS_B) == sorted(LANGUAGES)
    for x in recipe().languages:
        listed = judge.languages[x.name]
        assert listed["offered_by"] == ["exec-judge"], listed
        assert listed["source_file"] == x.source and listed["time_factor"] == x.time_factor
        assert listed["version"].strip(), listed
    assert judge.languages["go"]["version"].startswith("go version go1.19")
    assert judge.languages["rust"]["version"].startswith("rustc 1.63")


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_plus_b(judge: JudgeCluster, language: str, round_: int) -> None:
    listed = judge.languages[language]
    body = {"compile": {"language": language, "image": "judge", "timeout": COMPILE_SECONDS,
                        "files": [{"path": listed["source_file"],
                                   "content": A_PLUS_B[language]}]},
            "execute": {"image": "judge",
                        "cases": [{"input": i, "standard": s} for i, s in CASES]}}
    task = submit(judge.url, body)
    judgement = task["result"]["judgement"]
    verdicts = [c["verdict"] for c in judgement["cases"]]
    assert verdicts == VERDICTS, (task, judge.cluster.logs())
    assert judgement["language"] == listed["version"]


def test_a_language_the_image_lacks_is_refused_at_submission(judge: JudgeCluster) -> None:
    body = {"compile": {"language": "cobol", "image": "judge",
                        "files": [{"path": "main.cob", "content": "x"}]},
            "execute": {"image": "judge", "cases": [{"input": "", "standard": ""}]}}
    answer = requests.post(f"{judge.url}/api/v2/tasks", json=body, timeout=60)
    assert answer.status_code == 422, answer.text
    assert "no live executor offers 'cobol'" in answer.text


def test_the_caches_and_presets_cannot_be_written(judge: JudgeCluster) -> None:
    tries = " ".join(
        f"(echo x > {path}) 2>/dev/null && echo wrote {path};"
        for path in ("/opt/khala/go-cache/README", "/opt/khala/go-cache/new",
                     "/etc/khala/languages.json", "/usr/lib/go-1.19/pkg/new"))
    body = {"compile": {"command": "true", "image": "judge"},
            "execute": {"image": "judge", "command": f"{tries} ls /opt/khala/go-cache | wc -l"}}
    task = submit(judge.url, body)
    assert task["status"] == "success", task
    out = requests.get(f"{judge.url}/api/v2/tasks/{task['id']}/outputs/execute/stdout",
                       timeout=30).text
    assert "wrote" not in out and int(out) > 200, out  # the cache's 256 directories are there
