"""The site's routes through Flask's test client (no browser, no cluster): each page is served
with its CSP, the JSON API answers are unchanged, and everything ships inside the package."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest
from flask.testing import FlaskClient

from khala.config import GatewaySettings
from khala.discovery.static import StaticDiscovery
from khala.errors import Unavailable
from khala.gateway.app import create_app
from khala.gateway.site import CSP, PAGES

PAGE_PATHS = ["/", "/submit", "/tasks/0123456789abcdef01234567", "/tasks/not-an-id",
              "/executors", "/judicators", "/problems", "/problems/aplusb", "/problems/bad%20id"]


class DownJudicator:
    def call(self, method: str, *args: Any) -> Any:
        raise Unavailable("no judicator in this test")


@pytest.fixture
def http() -> FlaskClient:
    discovery = StaticDiscovery(["127.0.0.1:4001"], "/khala")
    return create_app(GatewaySettings(), client=DownJudicator(), discovery=discovery).test_client()


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_pages_are_html_with_csp(http: FlaskClient, path: str) -> None:
    reply = http.get(path)
    assert reply.status_code == 200
    assert reply.mimetype == "text/html"
    assert reply.headers["Content-Security-Policy"] == CSP
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    html = reply.get_data(as_text=True)
    # No inline script or style, no off-machine URL: every script is a same-origin module.
    assert len(re.findall(r"<script\b", html)) == 1
    assert re.search(r'<script type="module" src="/static/[a-z]+\.js"></script>', html)
    assert "<style" not in html and " style=" not in html
    assert "http:" not in html and "https:" not in html and '"//' not in html


def test_csp_allows_only_own_origin() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert all(v in ("'self'", "'none'") for v in directives.values()), directives


def test_route_list_moved_to_api(http: FlaskClient) -> None:
    reply = http.get("/api")
    assert reply.mimetype == "text/plain" and "/api/task/list" in reply.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/executors", "/api/judicators", "/api/task/list"])
def test_json_answers_have_no_page_headers(http: FlaskClient, path: str) -> None:
    reply = http.get(path)
    assert reply.mimetype == "application/json"
    assert "Content-Security-Policy" not in reply.headers


def test_everything_ships_in_the_package(http: FlaskClient) -> None:
    package = resources.files("khala.gateway")
    for _rule, _endpoint, template, _title in PAGES:
        assert package.joinpath("templates", template).is_file()
    scripts = [p for p in package.joinpath("static").iterdir() if p.name.endswith(".js")]
    assert len(scripts) >= 6
    for name in ["site.css", "favicon.svg", *(p.name for p in scripts)]:
        reply = http.get(f"/static/{name}")
        assert reply.status_code == 200, name
        reply.close()
    for script in scripts:
        text = script.read_text()
        # Data reaches the DOM through textContent only; nothing is fetched off the machine.
        sinks = re.findall(r"\.(?:innerHTML|outerHTML|insertAdjacentHTML|write)\b", text)
        assert sinks == [], script.name
        assert "http://" not in text and "https://" not in text, script.name


def test_the_vendored_highlighter_ships_and_is_used_for_tokens_only(http: FlaskClient) -> None:
    vendor = resources.files("khala.gateway").joinpath("static", "vendor", "prism")
    names = {p.name for p in vendor.iterdir()}
    assert {"prism-core.min.js", "prism-c.min.js", "LICENSE", "VERSION"} <= names, names
    for name in names:
        reply = http.get(f"/static/vendor/prism/{name}")
        assert reply.status_code == 200, name
        reply.close()
    # Prism's own highlighting functions write HTML; the site only asks for tokens and builds
    # the elements itself (textContent).
    site = resources.files("khala.gateway").joinpath("static")
    for script in (p for p in site.iterdir() if p.name.endswith(".js")):
        text = script.read_text()
        assert not re.search(r"\.highlight(Element|All|AllUnder)?\(", text), script.name
    assert "P.tokenize(" in site.joinpath("highlight.js").read_text()
