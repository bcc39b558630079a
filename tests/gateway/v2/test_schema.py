"""Schemathesis against the served /openapi.json: every API v2 operation with a bounded number
of generated requests, through a real cluster. No 5xx, every answer matches the document.
Not checked: that every schema-valid body is accepted — a task can also be refused for what a
JSON schema cannot say (base64 that does not decode, an unsafe path, files and zip together),
with a documented 422.

(Driven with hypothesis directly: schemathesis' pytest plugin does not load under pytest 9.)"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

MAX_EXAMPLES = 15


def test_api_v2_matches_its_openapi_document(cluster: Any) -> None:
    schema = schemathesis.openapi.from_url(f"{cluster.gateway_url}/openapi.json").include(
        path_regex="^/api/v2/"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(timeout=90, excluded_checks=[positive_data_acceptance])

        check()
