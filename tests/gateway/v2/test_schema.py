"""Schemathesis against the served /openapi.json: every API v2 operation with a bounded number
of generated requests, through a real cluster. No 5xx, every answer matches the document.
Not checked: that every schema-valid body is accepted — a task can also be refused for what a
JSON schema cannot say (base64 that does not decode, an unsafe path, files and zip together),
with a documented 422.

And the other way round: requests the document does not allow (a boolean for an integer, a
string for a number, a path parameter outside its pattern) are refused with a 4xx, never
accepted after a conversion and never answered 5xx.

(Driven with hypothesis directly: schemathesis' pytest plugin does not load under pytest 9.)"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

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


def test_api_v2_refuses_what_its_openapi_document_forbids(cluster: Any) -> None:
    """Schemathesis' coverage phase, negative: for each operation a fixed set of requests
    (about 1500 in all), each breaking one rule of the document (a boolean or a string for an
    integer, a value past a bound, a parameter outside its pattern, a method no route has)."""
    schema = schemathesis.openapi.from_url(f"{cluster.gateway_url}/openapi.json").include(
        path_regex="^/api/v2/"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    tried = 0
    for operation in operations:
        for case in schema.iter_coverage_cases(
                operation, generation_modes=[GenerationMode.NEGATIVE],
                generation_config=schema.config.generation_for(operation=operation)):
            tried += 1
            if operation.path == "/api/v2/batches":
                batch_refused(case)
            else:
                case.call_and_validate(timeout=90,
                                       checks=[not_a_server_error, negative_data_rejection])
    assert tried > 1000


def batch_refused(case: Any) -> None:
    """A batch answers each item apart (200, one outcome per task): one item refused (a 4xx
    outcome) is the batch's refusal; else the checks of every other operation apply."""
    response = case.call(timeout=90)
    if case.method.upper() == "POST" and response.status_code == 200:
        statuses = [item["status"] for item in response.json()["data"]]
        if any(400 <= s < 500 for s in statuses):
            return
    case.validate_response(response, checks=[not_a_server_error, negative_data_rejection])
