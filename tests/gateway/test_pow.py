"""pow-1's pure parts: server-defined call templates."""

from __future__ import annotations

from khala.gateway.pow import fill


def test_fill_replaces_placeholders_inside_strings_only() -> None:
    template = {"execute": {"command": "run {{0}} {{1}}", "files": [{"content": "{{0}}"}]}}
    assert fill(template, ['"x"', "y"]) == {
        "execute": {"command": 'run "x" y', "files": [{"content": '"x"'}]}}
