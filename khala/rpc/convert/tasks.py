"""Tasks on the wire: the whole Task (with its judging parts and webhook), its brief, and the
queries that list them (`search` arguments, `TaskQuery`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from khala import model
from khala.errors import InvalidInput
from khala.model import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    REJUDGE_PRIORITY,
    Case,
    Checker,
    Compare,
    Compile,
    Execute,
    Group,
    Interactor,
    PageQuery,
    SearchQuery,
    StepOptions,
    Task,
    TaskBrief,
    Webhook,
    compare_mode_of,
    group_policy_of,
    status_of,
)
from khala.rpc import judicator_thrift as T
from khala.rpc.convert.images import image_ref_from_thrift, image_ref_to_thrift
from khala.rpc.convert.problems import (
    history_from_thrift,
    history_to_thrift,
    problem_ref_from_thrift,
    problem_ref_to_thrift,
)
from khala.rpc.convert.results import result_from_thrift, result_to_thrift
from khala.rpc.convert.text import MAX_TEXT, Inflation, pack, raw_bytes, unpack
from khala.rules.seconds import from_wire, step_timeout_from_wire, wire_exact, wire_whole

# ----------------------------------------------------------------------------- parts


def cases_to_thrift(cases: list[Case], texts: bool = True) -> Any:
    """Without `texts`, each case's input and standard go empty (a lean find)."""
    if not cases:
        return None
    return [T.Case(input=pack(c.input if texts else ""),
                   standard=pack(c.standard if texts else ""), weight=c.weight,
                   timeout=wire_whole(c.timeout), cpu_limit=wire_whole(c.cpu_limit),
                   memory_limit=c.memory_limit, output_limit=c.output_limit,
                   timeout_exact=wire_exact(c.timeout),
                   cpu_limit_exact=wire_exact(c.cpu_limit), group=c.group or None)
                   for c in cases]


def cases_from_thrift(cases: Any, text: Callable[[bytes | None], str] = unpack) -> list[Case]:
    """Raises InvalidInput for a missing case or undecodable text (`text`: the call's shared
    inflation budget, so many cases cannot together inflate past it)."""
    found = []
    for c in cases or []:
        if c is None:
            raise InvalidInput("a test case is empty")
        found.append(Case(input=text(c.input), standard=text(c.standard),
                          weight=c.weight if c.weight is not None else 1,
                          timeout=from_wire(c.timeout, c.timeout_exact),
                          cpu_limit=from_wire(c.cpu_limit, c.cpu_limit_exact),
                          memory_limit=c.memory_limit,
                          output_limit=c.output_limit, group=c.group or ""))
    return found


def groups_to_thrift(groups: list[Group]) -> Any:
    if not groups:
        return None
    return [T.Group(name=g.name, points=g.points, policy=str(g.policy), deps=list(g.deps))
            for g in groups]


def groups_from_thrift(groups: Any) -> list[Group]:
    """Raises InvalidInput for a missing group or an unknown policy."""
    found = []
    for g in groups or []:
        if g is None:
            raise InvalidInput("a group is empty")
        try:
            policy = group_policy_of(g.policy or "sum")
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        found.append(Group(name=g.name or "", points=g.points if g.points is not None else 0.0,
                           policy=policy, deps=[d for d in g.deps or [] if d is not None]))
    return found


def interactor_to_thrift(interactor: Interactor | None) -> Any:
    if interactor is None:
        return None
    i = interactor
    return T.Interactor(language=i.language, source=pack(i.source), timeout=i.timeout,
                        cpu_limit=i.cpu_limit, memory_limit=i.memory_limit)


def interactor_from_thrift(interactor: Any, text: Callable[[bytes | None], str] = unpack
                           ) -> Interactor | None:
    if interactor is None:
        return None
    i = interactor
    return Interactor(language=i.language or "", source=text(i.source), timeout=i.timeout,
                      cpu_limit=i.cpu_limit, memory_limit=i.memory_limit)


def compare_to_thrift(compare: Compare | None) -> Any:
    if compare is None:
        return None
    checker = compare.checker
    return T.Compare(
        mode=str(compare.mode), abs_tol=compare.abs_tol, rel_tol=compare.rel_tol,
        checker=None if checker is None else T.Checker(language=checker.language,
                                                       source=pack(checker.source)))


def compare_from_thrift(compare: Any, text: Callable[[bytes | None], str] = unpack
                        ) -> Compare | None:
    """Raises InvalidInput for an unknown mode."""
    if compare is None:
        return None
    checker = compare.checker
    try:
        mode = compare_mode_of(compare.mode or "lines")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    return Compare(
        mode=mode,
        abs_tol=compare.abs_tol if compare.abs_tol is not None else Compare.abs_tol,
        rel_tol=compare.rel_tol if compare.rel_tol is not None else Compare.rel_tol,
        checker=None if checker is None else Checker(language=checker.language or "",
                                                     source=text(checker.source)))


def webhook_to_thrift(hook: Webhook | None) -> Any:
    if hook is None:
        return None
    return T.Webhook(url=hook.url, state=hook.state, attempts=hook.attempts,
                     last_status=hook.last_status, last_error=hook.last_error,
                     delivered_at=hook.delivered_at)


def webhook_from_thrift(hook: Any) -> Webhook | None:
    if hook is None or not hook.url:
        return None
    return Webhook(url=hook.url, state=hook.state or "pending", attempts=hook.attempts or 0,
                   last_status=hook.last_status, last_error=hook.last_error or "",
                   delivered_at=hook.delivered_at or "")


def priority_from_thrift(value: object) -> int:
    """A task's priority from the wire: none (old clients) is 0, out of range is refused (a
    rejudged task's, below the range, reads; a new task may not have it: validate_task)."""
    if value is None:
        return 0
    if not isinstance(value, int) or not REJUDGE_PRIORITY <= value <= PRIORITY_MAX:
        raise InvalidInput(f"priority must be within {PRIORITY_MIN}..{PRIORITY_MAX}")
    return value


# ----------------------------------------------------------------------------- tasks


def task_to_thrift(task: Task, lean: bool = False) -> Any:
    """`lean`: without the cases' texts and the steps' standard outputs (a lean find)."""
    c, e = task.compile, task.execute
    return T.Task(
        id=task.id,
        user=task.user,
        compile=T.Compile(source=c.source, command=pack(c.command),
                          timeout=wire_whole(c.timeout), timeout_exact=wire_exact(c.timeout),
                          memory_limit=c.memory_limit, language=c.language or None,
                          options=options_to_thrift(c.options),
                          image=image_ref_to_thrift(c.image)),
        execute=T.Execute(
            input=pack(e.input), data=e.data, command=pack(e.command),
            timeout=wire_whole(e.timeout), timeout_exact=wire_exact(e.timeout),
            cpu_limit=wire_whole(e.cpu_limit), cpu_limit_exact=wire_exact(e.cpu_limit),
            standard=pack(e.standard), memory_limit=e.memory_limit,
            pids_limit=e.pids_limit, output_limit=e.output_limit, disk_limit=e.disk_limit,
            cases=cases_to_thrift(e.cases, not lean), compare=compare_to_thrift(e.compare),
            stop_on_failure=e.stop_on_failure or None, interactive=e.interactive or None,
            core_limit=e.core_limit, run_uid=e.run_uid, run_gid=e.run_gid,
            groups=groups_to_thrift(e.groups),
            skip_failed_groups=e.skip_failed_groups or None,
            interactor=interactor_to_thrift(e.interactor), outputs=list(e.outputs) or None,
            problem=problem_ref_to_thrift(e.problem), options=options_to_thrift(e.options),
            image=image_ref_to_thrift(e.image),
        ),
        add_time=task.add_time,
        done=task.done,
        status=int(task.status),
        executor=task.executor,
        report_time=task.report_time,
        result=result_to_thrift(task.result, not lean),
        key=task.key,
        callback_url=task.callback_url,
        webhook=webhook_to_thrift(task.webhook),
        priority=task.priority,
        history=history_to_thrift(task.history),
    )


def options_to_thrift(options: StepOptions) -> Any:
    """None when nothing is asked: old peers see the struct they know."""
    if options.plain():
        return None
    return T.StepOptions(env=dict(options.env) or None, workdir=options.workdir or None,
                         cpu_rate=options.cpu_rate, network=options.network or None,
                         hostname=options.hostname or None)


def options_from_thrift(options: Any) -> StepOptions:
    """A step's options from the wire (InvalidInput for a map that is not text to text; the
    values are checked by khala/rules/options.py with the rest of the task)."""
    if options is None:
        return StepOptions()
    env = options.env or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise InvalidInput("options.env must map names to text")
    return StepOptions(env=dict(env), workdir=options.workdir or "", cpu_rate=options.cpu_rate,
                       network=bool(options.network), hostname=options.hostname or "")


def _compile_from_thrift(c: Any, text: Callable[[bytes | None], str]) -> Compile:
    return Compile(source=raw_bytes(c.source), command=text(c.command),
                   timeout=step_timeout_from_wire(c.timeout, c.timeout_exact),
                   memory_limit=c.memory_limit, language=c.language or "",
                   options=options_from_thrift(c.options),
                   image=image_ref_from_thrift(c.image))


def _execute_from_thrift(e: Any, text: Callable[[bytes | None], str]) -> Execute:
    return Execute(
        input=text(e.input), data=raw_bytes(e.data), command=text(e.command),
        timeout=step_timeout_from_wire(e.timeout, e.timeout_exact), standard=text(e.standard),
        memory_limit=e.memory_limit, cpu_limit=from_wire(e.cpu_limit, e.cpu_limit_exact),
        pids_limit=e.pids_limit,
        output_limit=e.output_limit, disk_limit=e.disk_limit,
        cases=cases_from_thrift(e.cases, text), compare=compare_from_thrift(e.compare, text),
        stop_on_failure=bool(e.stop_on_failure), interactive=bool(e.interactive),
        core_limit=e.core_limit, run_uid=e.run_uid, run_gid=e.run_gid,
        groups=groups_from_thrift(e.groups), skip_failed_groups=bool(e.skip_failed_groups),
        interactor=interactor_from_thrift(e.interactor, text),
        outputs=[name for name in e.outputs or [] if name is not None],
        problem=problem_ref_from_thrift(e.problem), options=options_from_thrift(e.options),
        image=image_ref_from_thrift(e.image),
    )


def task_from_thrift(task: Any, max_text: int = MAX_TEXT) -> Task:
    """Raises InvalidInput for missing parts, undecodable text, or texts that inflate beyond
    `max_text` bytes together (the judicator passes its task size limit)."""
    if task is None or task.compile is None or task.execute is None:
        raise InvalidInput("a task needs both a compile and an execute part")
    budget = Inflation(max_text)
    return Task(
        id=task.id or "",
        user=task.user if task.user is not None else -1,
        compile=_compile_from_thrift(task.compile, budget.text),
        execute=_execute_from_thrift(task.execute, budget.text),
        add_time=task.add_time or "",
        done=bool(task.done),
        status=status_of(task.status or 0),
        executor=task.executor or None,
        report_time=task.report_time or "",
        result=result_from_thrift(task.result, budget),
        key=task.key or None,
        callback_url=task.callback_url or None,
        webhook=webhook_from_thrift(task.webhook),
        priority=priority_from_thrift(task.priority),
        history=history_from_thrift(task.history),
    )


def brief_to_thrift(brief: TaskBrief) -> Any:
    return T.TaskBrief(id=brief.id, user=brief.user, add_time=brief.add_time, done=brief.done,
                       status=int(brief.status), executor=brief.executor,
                       report_time=brief.report_time, key=brief.key)


def brief_from_thrift(brief: Any) -> TaskBrief:
    return TaskBrief(id=brief.id or "", user=brief.user or 0, add_time=brief.add_time or "",
                     done=bool(brief.done), status=status_of(brief.status or 0),
                     executor=brief.executor or None, report_time=brief.report_time or "",
                     key=brief.key or None)


# ----------------------------------------------------------------------------- queries


def search_to_wire(query: SearchQuery) -> tuple[Any, ...]:
    """The seven arguments of `search`, in IDL order."""
    q = query
    return (q.id, q.user, q.start_time, q.end_time, q.old_to_new, q.limit, q.page)


def search_from_wire(
    id: str | None,  # noqa: A002 - wire name
    user: int | None,
    start_time: str | None,
    end_time: str | None,
    old_to_new: bool | None,
    limit: int | None,
    page: int | None,
) -> SearchQuery:
    """The arguments of `search` as a query; unset (null) filters stay None. Raises
    InvalidInput for a malformed id, an out-of-range number or an unreadable time."""
    if id is not None and not model.valid_id(id):
        raise InvalidInput("id must be 24 lowercase hex characters")
    for value in (user, limit, page):
        if value is not None and not model.valid_int(value):
            raise InvalidInput("user, limit and page must be within 0..2147483647")
    try:
        start = model.canonical_time(start_time) if start_time else None
        end = model.canonical_time(end_time) if end_time else None
    except ValueError as exc:
        raise InvalidInput(f"bad time: {exc}") from exc
    return SearchQuery(id=id or None, user=user, start_time=start, end_time=end,
                       old_to_new=bool(old_to_new), limit=limit or 0, page=page or 0)


def page_query_to_thrift(query: PageQuery) -> Any:
    return T.TaskQuery(user=query.user, statuses=list(query.statuses),
                       start_time=query.start_time, end_time=query.end_time,
                       old_to_new=query.old_to_new, limit=query.limit,
                       after_time=query.after_time, after_id=query.after_id,
                       key_prefix=query.key_prefix)


def page_query_from_thrift(query: Any) -> PageQuery:
    if query is None:
        return PageQuery()
    return PageQuery(
        user=query.user,
        statuses=[int(s) for s in query.statuses or []],
        start_time=query.start_time or None,
        end_time=query.end_time or None,
        old_to_new=bool(query.old_to_new),
        limit=query.limit if query.limit is not None else PageQuery.limit,
        after_time=query.after_time or None,
        after_id=query.after_id or None,
        key_prefix=query.key_prefix or None,
    )
