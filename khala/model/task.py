"""A task and its parts (steps, cases, groups, checker, interactor) and its result: what a
client submits, an executor runs and a judicator stores."""

from __future__ import annotations

from dataclasses import dataclass, field

from khala.files.refs import FileRef
from khala.model.codes import CompareMode, GroupPolicy, Reason, Status, Verdict


@dataclass
class Case:
    """One test case of a judged task: input, expected output, weight, its own limits (None:
    the task's)."""

    input: str = ""
    standard: str = ""
    weight: int = 1
    timeout: float | None = None  # seconds of wall time (fractions allowed)
    cpu_limit: float | None = None  # CPU seconds
    memory_limit: int | None = None
    output_limit: int | None = None
    group: str = ""  # the name of its group (Execute.groups); "" when the task has none


@dataclass
class Group:
    """A group of cases (a subtask) that scores together: `points` for the group, earned by
    `policy`; scored 0 (skipped) unless every group named in `deps` passed (all its cases
    accepted)."""

    name: str = ""
    points: float = 0.0
    policy: GroupPolicy = GroupPolicy.SUM
    deps: list[str] = field(default_factory=list)


@dataclass
class Interactor:
    """A jury program that talks to the contestant's program through pipes and decides the
    case with its exit code (testlib conventions), built from one source file with a language
    preset. Its limits: None = the executor's defaults (docs/judging.md)."""

    language: str = ""
    source: str = ""
    timeout: int | None = None  # seconds of wall time
    cpu_limit: int | None = None  # CPU seconds
    memory_limit: int | None = None  # bytes


@dataclass
class Checker:
    """A program that decides a case (testlib exit codes), built from one source file with a
    language preset."""

    language: str = ""
    source: str = ""


@dataclass
class Compare:
    """The comparison of a judged task. Tolerances are for mode float: a number passes when
    |got - want| <= abs_tol or <= rel_tol * |want|."""

    mode: CompareMode = CompareMode.LINES
    abs_tol: float = 1e-6
    rel_tol: float = 1e-6
    checker: Checker | None = None  # mode checker only


@dataclass
class StepOptions:
    """What one step (compile or execute) runs with besides its limits (docs/sandbox.md):
    environment variables on top of Khala's own, a working directory inside the work area, a
    CPU rate, the network and the host name. Checked by khala/rules/options.py."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # relative to the work area (/work); "" = its top
    cpu_rate: float | None = None  # CPUs the step may use at once (0.5 = half of one); None = any
    network: bool = False  # a user network stack (executors that allow it; else refused)
    hostname: str = ""  # the step's UTS namespace's host name; "" = Khala's own ("khala")

    def plain(self) -> bool:
        """Nothing asked: the step runs as a step without options does."""
        return not (self.env or self.workdir or self.cpu_rate is not None or self.network
                    or self.hostname)


def env_size(env: dict[str, str]) -> int:
    """Bytes an environment takes in a process: NAME=value and a NUL per variable."""
    return sum(len(k.encode()) + len(v.encode()) + 2 for k, v in env.items())


#: What an executor can run beyond plain steps, named in its reports (docs/rpc.md): "images",
#: steps in an image (docs/images.md). A task that needs a feature goes only to an executor
#: that names it.
FEATURE_IMAGES = "images"


@dataclass
class ImageRef:
    """The image a step runs in (docs/images.md): its root filesystem instead of the
    executor's. The client names `name` and `version` (0: the latest when submitted); the
    judicator records the version it resolved and the image's tar (`sha256`, `size`), which the
    executor fetches, unpacks once and mounts read-only as the step's `/`."""

    name: str = ""
    version: int = 0
    resolved: int = 0
    sha256: str = ""
    size: int = 0


@dataclass
class Compile:
    source: bytes = b""  # zip archive bytes, empty = none
    command: str = ""
    timeout: float = 0  # wall seconds (fractions allowed); 0 = the limits policy's default
    memory_limit: int | None = None  # bytes
    language: str = ""  # a preset (khala/judging/presets.py) filling both commands; "" = none
    options: StepOptions = field(default_factory=StepOptions)
    image: ImageRef | None = None  # the step's root filesystem; None: the executor's host's


@dataclass
class ProblemRef:
    """The stored problem a judged task is judged against (docs/judging.md, "Problems"): the
    client names `id` and `version` (0: the latest when submitted); the judicator records the
    version it resolved (`judged`), that version's spec (`spec`, the SHA-256 of its spec file,
    from which the executor reads everything else) and its jury programs' languages (dispatch
    needs them)."""

    id: str = ""
    version: int = 0
    judged: int = 0
    spec: str = ""
    spec_size: int = 0  # bytes of that spec file
    checker: str = ""  # the checker's language, "" for none
    interactor: str = ""  # the interactor's language, "" for none


@dataclass
class Execute:
    input: str = ""
    data: bytes = b""  # zip archive bytes, empty = none
    command: str = ""
    timeout: float = 0  # wall seconds; 0 = the limits policy's default
    standard: str = ""
    memory_limit: int | None = None
    cpu_limit: float | None = None  # CPU seconds; None = the limits policy's default
    pids_limit: int | None = None
    output_limit: int | None = None  # bytes per stream
    disk_limit: int | None = None  # bytes of the run's work area
    cases: list[Case] = field(default_factory=list)  # empty: one case, input + standard
    compare: Compare | None = None
    stop_on_failure: bool = False  # judged tasks: skip the cases after the first failed one
    interactive: bool = False  # stdin comes live from a pow-1 client after `input`
    groups: list[Group] = field(default_factory=list)  # judged tasks: groups of cases, scored
    # Judged tasks with groups: run the cases one by one and skip the rest of a failed min
    # group, and the cases of a group whose dependency failed.
    skip_failed_groups: bool = False
    interactor: Interactor | None = None  # judged tasks: an interactive problem's jury program
    outputs: list[str] = field(default_factory=list)  # files the run writes, returned (relative)
    problem: ProblemRef | None = None  # judged against a stored problem instead of inline cases
    core_limit: int | None = None  # bytes of a core file the step may write; None = no cores
    # The host uid/gid both steps run as (the work area is theirs); None = the sandbox's own.
    # Executors run only ids their operator allows (khala/rules/identity.py), never root.
    run_uid: int | None = None
    run_gid: int | None = None
    options: StepOptions = field(default_factory=StepOptions)  # judged: every case's run
    image: ImageRef | None = None  # the step's root filesystem; None: the executor's host's


@dataclass
class Rusage:
    """getrusage(2)'s fields for a step's process tree (docs/sandbox.md says where each comes
    from): CPU seconds, maxrss in bytes, the rest counts as the kernel gives them."""

    utime: float = 0.0
    stime: float = 0.0
    maxrss: int = 0
    ixrss: int = 0
    idrss: int = 0
    isrss: int = 0
    minflt: int = 0
    majflt: int = 0
    nswap: int = 0
    inblock: int = 0
    oublock: int = 0
    msgsnd: int = 0
    msgrcv: int = 0
    nsignals: int = 0
    nvcsw: int = 0
    nivcsw: int = 0


@dataclass
class StepReport:
    """What one sandboxed step did and used."""

    exit_code: int | None = None
    signal: int | None = None
    core_dump: bool = False
    time: float = 0.0  # CPU seconds, user + sys
    wall_time: float = 0.0
    memory: int = 0  # peak bytes
    reason: Reason = Reason.OK
    rusage: Rusage | None = None  # None: not measured (an older executor, or it never ran)
    pid: int | None = None  # the step's process on its executor host

    @property
    def wait_status(self) -> int | None:
        """The step's wait status in the kernel's encoding (exit code << 8, or the signal
        number with 0x80 for a core dump); None when it did not end on its own terms."""
        if self.signal is not None:
            return (self.signal & 0x7F) | (0x80 if self.core_dump else 0)
        if self.exit_code is not None:
            return (self.exit_code & 0xFF) << 8
        return None


@dataclass
class OutputFile:
    """A file a run wrote and the task asked back (`Execute.outputs`), byte for byte: its
    content when `error` is empty, else why it is not returned (missing, not a regular file,
    over the output limit)."""

    name: str = ""
    content: bytes = b""
    size: int = 0  # bytes of the file as the run left it (0 when missing)
    error: str = ""


@dataclass
class CaseResult:
    """What one test case did: its verdict, the points it earned (of its weight), usage and
    (cut) output."""

    verdict: Verdict = Verdict.SKIPPED
    weight: int = 1
    time: float = 0.0  # CPU seconds
    wall_time: float = 0.0
    memory: int = 0  # peak bytes
    exit_code: int | None = None
    signal: int | None = None
    output: str = ""  # stdout, cut to the executor's case_output_limit
    error: str = ""  # stderr, cut likewise
    message: str = ""  # the first difference, or the checker's comment
    points: float = 0.0  # earned: the weight when accepted, the checker's share when partial
    files: list[OutputFile] = field(default_factory=list)  # Execute.outputs of this case


@dataclass
class GroupResult:
    """How one group of cases scored."""

    name: str = ""
    verdict: Verdict = Verdict.SKIPPED  # accepted, else its first failed case's (or skipped)
    score: float = 0.0
    max_score: float = 0.0  # the group's points
    skipped: bool = False  # a dependency did not pass: scored 0 whatever its cases did
    cases: list[int] = field(default_factory=list)  # indices (0-based) of its cases
    message: str = ""  # which dependency did not pass


@dataclass
class Judgement:
    """The outcome of a judged task: overall verdict, score out of max_score (without groups:
    the points of the cases out of their weights; with groups: the groups' scores out of their
    points), the cases, the groups, and how the build went."""

    verdict: Verdict = Verdict.INTERNAL_ERROR
    score: float = 0.0
    max_score: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)
    language: str = ""  # the preset's version string on the executor that judged it
    compiles: int = 0  # compile steps this task ran (program and checker)
    cache_hit: bool = False  # the program came from the executor's compile cache
    message: str = ""
    groups: list[GroupResult] = field(default_factory=list)


@dataclass
class Language:
    """A language preset an executor can run, with its version string there."""

    name: str
    version: str = ""
    executors: int = 0  # in listings: how many live executors have it
    executor_names: list[str] = field(default_factory=list)  # in listings: which ones
    # Offered in an image (docs/images.md): "name:version"; "" = on the executor's host.
    image: str = ""
    source: str = ""  # the program's file name (an image's preset; the host's: PRESETS)
    time_factor: float = 1.0  # a case's CPU and wall limits are multiplied by it


#: The four captured streams of a result, by field name.
OUTPUT_FIELDS = ("compile_output", "compile_error", "execute_output", "execute_error")


@dataclass
class Result:
    """What the steps wrote, byte for byte (never decoded: a program may write any bytes)."""

    compile_output: bytes = b""
    compile_error: bytes = b""
    execute_output: bytes = b""
    execute_error: bytes = b""
    compile_report: StepReport | None = None
    execute_report: StepReport | None = None
    judgement: Judgement | None = None  # judged tasks only (docs/judging.md)
    files: list[OutputFile] = field(default_factory=list)  # Execute.outputs (plain tasks)
    # Streams kept whole in the file store (larger than the executor's result_inline), by field
    # name ("execute_output", …); the field itself then holds their first bytes only.
    stored: dict[str, FileRef] = field(default_factory=dict)


@dataclass
class Judged:
    """A judgement a task had before it was judged again (a rejudge), kept in its history."""

    at: str = ""  # when it was replaced
    rejudge: str = ""  # the rejudge that replaced it
    version: int = 0  # the problem version it was judged against
    status: Status = Status.UNKNOWN_ERROR
    executor: str | None = None
    report_time: str = ""  # when it was recorded
    judgement: Judgement | None = None  # without the cases' outputs


@dataclass
class Webhook:
    """The delivery record of a task's webhook (khala/judicator/webhooks.py)."""

    url: str
    state: str = "pending"  # pending, ready, sending, delivered, failed
    attempts: int = 0
    last_status: int | None = None  # HTTP status of the last try
    last_error: str = ""
    delivered_at: str = ""


@dataclass
class Task:
    id: str = ""
    user: int = 0
    compile: Compile = field(default_factory=Compile)
    execute: Execute = field(default_factory=Execute)
    add_time: str = ""
    done: bool = False
    status: Status = Status.PENDING
    executor: str | None = None
    report_time: str = ""
    result: Result | None = None
    key: str | None = None  # client-chosen id (API v2), unique among tasks
    callback_url: str | None = None  # webhook POSTed when the task finishes (operations)
    webhook: Webhook | None = None  # its delivery record, when read back
    priority: int = 0  # higher is dispatched first; the seed API sends none: 0
    history: list[Judged] = field(default_factory=list)  # earlier judgements (API v2 reads)

    def brief(self) -> TaskBrief:
        return TaskBrief(
            id=self.id,
            user=self.user,
            add_time=self.add_time,
            done=self.done,
            status=self.status,
            executor=self.executor,
            report_time=self.report_time,
            key=self.key,
        )


def judged(task: Task) -> bool:
    """Whether the task asks for judging: a language, test cases, a comparison, groups or an
    interactor."""
    e = task.execute
    return bool(task.compile.language or e.cases or e.compare is not None or e.groups
                or e.interactor is not None or e.problem is not None)


def task_size(task: Task) -> int:
    """The size that counts against the task size limit: every payload the user sent."""
    e = task.execute
    checker = e.compare.checker if e.compare is not None else None
    interactor = e.interactor
    return (
        len(task.compile.source)
        + len(task.compile.command.encode())
        + len(e.input.encode())
        + len(e.data)
        + len(e.command.encode())
        + len(e.standard.encode())
        + sum(len(c.input.encode()) + len(c.standard.encode()) for c in e.cases)
        + (len(checker.source.encode()) if checker is not None else 0)
        + (len(interactor.source.encode()) if interactor is not None else 0)
        + sum(len(g.name.encode()) + sum(len(d.encode()) for d in g.deps) for g in e.groups)
        + sum(len(c.group.encode()) for c in e.cases)
        + sum(len(name.encode()) for name in e.outputs)
        + env_size(task.compile.options.env) + len(task.compile.options.workdir.encode())
        + env_size(e.options.env) + len(e.options.workdir.encode())
    )


@dataclass
class TaskBrief:
    id: str
    user: int = 0
    add_time: str = ""
    done: bool = False
    status: Status = Status.PENDING
    executor: str | None = None
    report_time: str = ""
    key: str | None = None  # client-chosen id (API v2)
