"""Thrift structs ↔ the domain model: the only place that knows the wire encoding, one module
per topic. Texts travel zlib-compressed (`text`); result codes stand for the domain errors
(`errors`); `tasks` (tasks, briefs, queries), `results` (what a run produced), `reports` (an
executor's report and its answer), `executors` (listings, languages, statistics), `jobs` and
`files` (references to stored files), `images` (a step's image, image versions) and
`problems` (problems, a task's problem and history,
rejudges).

Conversions from the wire validate what they read (InvalidInput, TooLarge), except the lenient
decoding of what executors hand in (`reports.completed_from_thrift`). The names below are the
package's API; the handler, the client and the tests use them as `convert.<name>`.
"""

from khala.rpc.convert.errors import REFUSALS, code_of, error_of
from khala.rpc.convert.executors import (
    executor_from_thrift,
    executor_to_thrift,
    language_from_thrift,
    language_to_thrift,
    stats_from_thrift,
    stats_to_thrift,
)
from khala.rpc.convert.files import file_ref_from_thrift, file_ref_to_thrift
from khala.rpc.convert.images import (
    image_from_thrift,
    image_ref_from_thrift,
    image_ref_to_thrift,
    image_to_thrift,
)
from khala.rpc.convert.jobs import (
    job_answer,
    job_from_thrift,
    job_to_thrift,
    jobs_answer,
    spec_from_json,
    spec_from_thrift,
    spec_to_thrift,
)
from khala.rpc.convert.problems import (
    history_from_thrift,
    history_to_thrift,
    problem_from_thrift,
    problem_ref_from_thrift,
    problem_ref_to_thrift,
    problem_to_thrift,
    rejudge_from_thrift,
    rejudge_to_thrift,
)
from khala.rpc.convert.reports import (
    assignment_from_thrift,
    assignment_to_thrift,
    completed_from_thrift,
    completed_to_thrift,
    executing_to_thrift,
)
from khala.rpc.convert.results import (
    files_from_thrift,
    files_to_thrift,
    judgement_from_thrift,
    judgement_to_thrift,
    result_from_thrift,
    result_to_thrift,
    step_from_thrift,
    step_to_thrift,
)
from khala.rpc.convert.tasks import (
    brief_from_thrift,
    brief_to_thrift,
    cases_from_thrift,
    cases_to_thrift,
    compare_from_thrift,
    compare_to_thrift,
    groups_from_thrift,
    groups_to_thrift,
    interactor_from_thrift,
    interactor_to_thrift,
    page_query_from_thrift,
    page_query_to_thrift,
    search_from_wire,
    search_to_wire,
    task_from_thrift,
    task_to_thrift,
    webhook_from_thrift,
    webhook_to_thrift,
)
from khala.rpc.convert.text import MAX_TEXT, Inflation, pack, raw_bytes, unpack

__all__ = [
    "assignment_from_thrift", "assignment_to_thrift", "brief_from_thrift", "brief_to_thrift",
    "cases_from_thrift", "cases_to_thrift", "code_of", "compare_from_thrift", "compare_to_thrift",
    "completed_from_thrift", "completed_to_thrift", "error_of", "executing_to_thrift",
    "executor_from_thrift", "executor_to_thrift", "file_ref_from_thrift", "file_ref_to_thrift",
    "files_from_thrift", "files_to_thrift", "groups_from_thrift", "groups_to_thrift",
    "history_from_thrift", "history_to_thrift", "image_from_thrift", "image_ref_from_thrift",
    "image_ref_to_thrift", "image_to_thrift", "Inflation", "interactor_from_thrift",
    "interactor_to_thrift", "job_answer", "job_from_thrift", "job_to_thrift", "jobs_answer",
    "judgement_from_thrift", "judgement_to_thrift", "language_from_thrift", "language_to_thrift",
    "MAX_TEXT", "pack", "page_query_from_thrift", "page_query_to_thrift", "problem_from_thrift",
    "problem_ref_from_thrift", "problem_ref_to_thrift", "problem_to_thrift", "raw_bytes",
    "REFUSALS", "rejudge_from_thrift", "rejudge_to_thrift", "result_from_thrift",
    "result_to_thrift", "search_from_wire", "search_to_wire", "spec_from_json", "spec_from_thrift",
    "spec_to_thrift", "stats_from_thrift", "stats_to_thrift", "step_from_thrift", "step_to_thrift",
    "task_from_thrift", "task_to_thrift", "unpack", "webhook_from_thrift", "webhook_to_thrift",
]
