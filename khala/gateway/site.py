"""The website of seed 004: seven pages served by the gateway, each its own bookmarkable URL.

The pages are static HTML (khala/gateway/templates) plus hand-written CSS and JavaScript
(khala/gateway/static); no data is rendered on the server. Their scripts call only the public
HTTP API (/api/...), so using the site exercises the API. Everything a task carries is hostile
text: the scripts only ever set textContent, and each page is sent with a Content-Security-Policy
that allows scripts, styles, images and requests from the page's own origin and nothing else
(no inline script, no inline style, no other origin). See docs/website.md.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, render_template

#: The Content-Security-Policy of every page: own origin only, no inline script or style, no
#: plugins, no <base>, no framing, forms post only to the own origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

#: Headers sent with every page (never with the JSON API answers).
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

#: URL rule → (endpoint, template, page title). `/tasks/<task_id>` (and `/problems/<id>`) serves
#: one page for any id: its script reads the id from the URL and shows the API's answer (not
#: found, invalid id).
PAGES = (
    ("/", "page_tasks", "tasks.html", "Tasks"),
    ("/submit", "page_submit", "submit.html", "Submit a task"),
    ("/tasks/<task_id>", "page_task", "task.html", "Task"),
    ("/executors", "page_executors", "executors.html", "Executors"),
    ("/judicators", "page_judicators", "judicators.html", "Judicators"),
    ("/problems", "page_problems", "problems.html", "Problems"),
    ("/problems/<problem_id>", "page_problem", "problem.html", "Problem"),
)


def _page_view(template: str, title: str, endpoint: str) -> Callable[..., Response]:
    def view(**_: str) -> Response:
        body = render_template(template, title=title, active=endpoint)
        return Response(body, mimetype="text/html", headers=PAGE_HEADERS)

    view.__name__ = endpoint
    return view


def register_site(app: Flask) -> None:
    """Adds the pages to `app`; their files come from its templates/ and static/ folders."""
    for rule, endpoint, template, title in PAGES:
        app.add_url_rule(rule, endpoint, _page_view(template, title, endpoint), methods=["GET"])
