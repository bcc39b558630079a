// The Judicator service. Field ids 1..10 and their types are the wire contract that existing
// Khala clients speak; never renumber or retype them. Extensions are optional fields with new ids.

namespace py khala_judicator

// getrusage(2) of a step's process tree. Extension.
struct Rusage {
    1: double utime,               // user CPU seconds
    2: double stime,               // system CPU seconds
    3: i64 maxrss,                 // bytes
    4: i64 ixrss,
    5: i64 idrss,
    6: i64 isrss,
    7: i64 minflt,
    8: i64 majflt,
    9: i64 nswap,
    10: i64 inblock,
    11: i64 oublock,
    12: i64 msgsnd,
    13: i64 msgrcv,
    14: i64 nsignals,
    15: i64 nvcsw,
    16: i64 nivcsw,
}

// Resource report of one step (compile or execute). Extension, not in the original protocol.
struct StepReport {
    1: optional i32 exit_code,     // exit status when the process exited normally
    2: optional i32 signal,        // signal number when the process was killed by a signal
    3: optional bool core_dump,
    4: optional double time,       // CPU seconds, user + sys
    5: optional double wall_time,  // seconds
    6: optional i64 memory,        // peak bytes
    7: optional string reason,     // ok, nonzero_exit, signaled, time_limit, wall_limit, ...
    8: optional Rusage rusage,
    9: optional i32 pid,           // the step's process on its executor host
}

// Extension (operations): the delivery record of a task's webhook
struct Webhook {
    1: string url,
    2: string state,              // pending, ready, sending, delivered, failed
    3: i32 attempts,
    4: optional i32 last_status,  // HTTP status of the last try
    5: optional string last_error,
    6: optional string delivered_at,
}

// Judging (docs/judging.md). Extensions, not in the original protocol.
struct Case {
    1: binary input,                // zlib-compressed UTF-8
    2: binary standard,             // expected output, zlib-compressed UTF-8
    3: optional i32 weight,         // default 1
    4: optional i32 timeout,        // seconds of wall time; unset = the task's
    5: optional i32 cpu_limit,
    6: optional i64 memory_limit,
    7: optional i64 output_limit,
    8: optional double timeout_exact,   // the timeout when it has a fraction (4 rounded up)
    9: optional double cpu_limit_exact, // the CPU limit when it has a fraction (5 rounded up)
    // Extension (judging: groups; 8 and 9 are taken by the exact limits)
    10: optional string group,      // its group's name (Execute 20); unset = none
}

// A group of cases that scores together (docs/judging.md, "Groups and scores").
struct Group {
    1: string name,
    2: double points,
    3: string policy,               // sum, min (all or nothing)
    4: optional list<string> deps,  // groups that must pass (all cases accepted) first
}

// An interactive problem's jury program (docs/judging.md, "Interactors").
struct Interactor {
    1: string language,             // a preset name
    2: binary source,               // its one source file, zlib-compressed UTF-8
    3: optional i32 timeout,        // wall seconds; unset = the executor's default
    4: optional i32 cpu_limit,      // CPU seconds
    5: optional i64 memory_limit,   // bytes
}

// A file a run wrote that the task asked back (Execute 23).
struct OutputFile {
    1: string name,
    2: binary content,              // zlib-compressed bytes, exactly as written
    3: i64 size,
    4: optional string error,       // set when not returned: missing, not a regular file, ...
}

struct GroupResult {
    1: string name,
    2: string verdict,
    3: double score,
    4: double max_score,
    5: bool skipped,                // a dependency did not pass
    6: list<i32> cases,             // indices of its cases
    7: string message,
}

struct Checker {
    1: string language,             // a preset name
    2: binary source,               // the checker's one source file, zlib-compressed UTF-8
}

struct Compare {
    1: string mode,                 // exact, lines, tokens, float, checker
    2: optional double abs_tol,
    3: optional double rel_tol,
    4: optional Checker checker,
}

struct CaseResult {
    1: string verdict,              // accepted, wrong_answer, time_limit, memory_limit, ...
    2: i32 weight,
    3: double time,                 // CPU seconds
    4: double wall_time,
    5: i64 memory,                  // peak bytes
    6: optional i32 exit_code,
    7: optional i32 signal,
    8: binary output,               // cut stdout, zlib-compressed UTF-8
    9: binary error,                // cut stderr, zlib-compressed UTF-8
    10: string message,
    // Extensions (groups, partial points, files out)
    11: optional double points,     // earned of its weight
    12: optional list<OutputFile> files,
}

struct Judgement {
    1: string verdict,
    2: i32 score,                   // rounded down; 10 and 11 hold the exact values
    3: i32 max_score,
    4: list<CaseResult> cases,
    5: string language,             // the preset's version string on the executor
    6: i32 compiles,                // compile steps run for this task
    7: bool cache_hit,
    8: string message,
    // Extensions (groups, partial points)
    9: optional list<GroupResult> groups,
    10: optional double exact_score,
    11: optional double exact_max_score,
}

struct Language {
    1: string name,
    2: string version,
    3: optional i32 executors,      // in `languages()`: live executors that have it
    4: optional list<string> executor_names, // in `languages()`: their names
    5: optional string image,       // offered in this image ("name:version"); absent = the host
    6: optional string source,      // the program's file name
    7: optional double time_factor, // a case's CPU and wall limits are multiplied by it
}

// Extension: what one step runs with besides its limits (docs/sandbox.md); absent = none
struct StepOptions {
    1: optional map<string, string> env,  // over Khala's own variables
    2: optional string workdir,           // relative to /work; unset = /work
    3: optional double cpu_rate,          // CPUs at once; unset = no rate
    4: optional bool network,             // a user network stack (executors that allow it)
    5: optional string hostname,          // the step's host name (UTS); unset = "khala"
}

struct Compile {
    1: binary source,               // zip archive, empty = none
    2: binary command,              // zlib-compressed UTF-8
    3: i32 timeout,                 // seconds, 0 = none
    // Extensions
    4: optional i64 memory_limit,   // bytes
    5: optional string language,    // a preset filling both commands (judging)
    6: optional double timeout_exact, // the timeout when it has a fraction (3 rounded up)
    // Extension (per-step options): from 40
    40: optional StepOptions options,
    // Extension (images): the root filesystem the step runs in
    41: optional ImageRef image,
}

struct Execute {
    1: binary input,                // zlib-compressed UTF-8
    2: binary data,                 // zip archive, empty = none
    3: binary command,              // zlib-compressed UTF-8
    4: i32 timeout,                 // seconds, 0 = none
    5: binary standard,             // zlib-compressed UTF-8
    // Extensions
    6: optional i64 memory_limit,   // bytes
    7: optional i32 cpu_limit,      // CPU seconds
    8: optional i32 pids_limit,
    9: optional i64 output_limit,   // bytes per stream
    10: optional list<Case> cases,  // judging: unset/empty = one case, input + standard
    11: optional Compare compare,
    12: optional bool stop_on_failure,
    13: optional bool interactive,  // stdin live from a pow-1 client (docs/streaming.md)
    14: optional i64 disk_limit,    // bytes of the run's work area
    15: optional double timeout_exact,   // the timeout when it has a fraction (4 rounded up)
    16: optional double cpu_limit_exact, // the CPU limit when it has a fraction (7 rounded up)
    17: optional i64 core_limit,    // bytes of a core file the step may write; unset = none
    18: optional i32 run_uid,       // host uid both steps run as; unset = the sandbox's own
    19: optional i32 run_gid,       // host gid likewise
    // Extensions (judging: groups, interactors, files out): from 20, since 15-19 are the
    // exact limits' and the run's (core size, uid, gid). Later extensions: from 24
    // (problems from 31, step options from 40).
    20: optional list<Group> groups,
    21: optional bool skip_failed_groups,
    22: optional Interactor interactor,
    23: optional list<string> outputs, // files the run writes, returned in the result
    // Extension (problems): judged against a stored problem's version
    31: optional ProblemRef problem,
    // Extension (per-step options): from 40
    40: optional StepOptions options,
    // Extension (images): the root filesystem the step runs in
    41: optional ImageRef image,
}

// A stored file (docs/rpc.md, "Files"): content-addressed.
struct FileRef {
    1: string sha256,               // 64 lowercase hex characters
    2: i64 size,
}

// Extensions (images, docs/images.md; field ids from 41) ---------------------------------

// The image a step runs in (Compile 41, Execute 41): its root filesystem, mounted read-only
// as the step's `/` instead of the executor's.
struct ImageRef {
    1: string name,
    2: optional i32 version,        // asked; unset or 0 = the latest when submitted
    3: optional i32 resolved,       // set by the judicator: the version it runs in
    4: optional string sha256,      // set by the judicator: the image's tar, a stored file
    5: optional i64 size,           // set by the judicator: bytes of that tar
}

// One version of an image (image_add, image_list).
struct Image {
    1: string name,
    2: i32 version,
    3: FileRef file,                // the tar of its root filesystem, a stored file
    4: string created,
    5: string note,                 // how it was made, for people
}

struct ImageReturn {
    1: ReturnCode result,
    2: string detail,
    3: list<Image> images,          // image_add: the new version; image_list: by name, version
}

// Extensions (problems, docs/judging.md "Problems"; field ids from 31) -------------------

// The stored problem a judged task names (Execute 31) instead of inline cases.
struct ProblemRef {
    1: string id,
    2: optional i32 version,        // asked; unset or 0 = the latest when submitted
    3: optional i32 judged,         // set by the judicator: the version judged against
    4: optional string spec,        // set by the judicator: sha256 of that version's spec
    5: optional string checker,     // set by the judicator: the checker's language
    6: optional string interactor,  // and the interactor's
    7: optional i64 spec_size,      // set by the judicator: bytes of the spec
}

// A judgement a rejudged task had before (Task 31).
struct Judged {
    1: string at,                   // when it was replaced
    2: string rejudge,              // the rejudge that replaced it
    3: i32 version,                 // the problem version it was judged against
    4: i32 status,
    5: optional string executor,
    6: string report_time,
    7: optional Judgement judgement,
}

struct Result {
    1: binary compile_output,       // zlib-compressed UTF-8
    2: binary compile_error,
    3: binary execute_output,
    4: binary execute_error,
    // Extensions
    5: optional StepReport compile_report,
    6: optional StepReport execute_report,
    7: optional Judgement judgement,
    8: optional list<OutputFile> files, // Execute 23 of a plain task (judged: per case)
    // Extension (files): streams kept whole as stored files, by name (execute_output, …);
    // the stream's own field then holds its first bytes only
    31: optional map<string, FileRef> stored,
}

struct Task {
    1: string id,
    2: i32 user,
    3: Compile compile,
    4: Execute execute,
    5: string add_time,
    6: bool done,
    7: i32 status,
    8: string executor,
    9: string report_time,
    10: Result result,
    // Extension (API v2): the client-chosen id; tasks added with one are idempotent
    11: optional string key,
    // Extensions (operations; ids from 41): the webhook URL and its delivery record
    41: optional string callback_url,
    42: optional Webhook webhook,
    // Extension: higher is dispatched first; absent = 0
    12: optional i32 priority,
    // Extension (problems): earlier judgements of a rejudged task, oldest first (find only)
    31: optional list<Judged> history,
}

struct TaskBrief {
    1: string id,
    2: i32 user,
    3: string add_time,
    4: bool done,
    5: i32 status,
    6: string executor,
    7: string report_time,
    // Extension (API v2)
    8: optional string key,
}

struct Executor {
    1: string id,
    2: string hostname,
    3: string report_time,
}

enum ReturnCode {
    OK = 0,
    ERROR = 1,
    NOT_EXIST = 2,
    TOO_LARGE = 3,
    INVALID_INPUT = 4,
    // Extension: answered only by the API v2 methods below, which old clients never call
    CONFLICT = 5,
}

struct AddReturn {
    1: ReturnCode result,
    2: string id,
}

struct SearchReturn {
    1: ReturnCode result,
    2: i32 pages,
    3: list<TaskBrief> tasks,
}

struct GetReturn {
    1: ReturnCode result,
    2: Task task,
}

// Extension (API v2): a signal for the processes of a running task
struct Signal {
    1: string id,
    2: i32 signum,
}

struct ReportReturn {
    1: ReturnCode result,
    2: list<TaskBrief> cancel,
    3: list<Task> assign,
    // Extension (API v2): signals to deliver to the running steps of held tasks
    4: optional list<Signal> signals,
}

struct LanguagesReturn {
    1: ReturnCode result,
    2: list<Language> languages,
}

struct ExecutorsReturn {
    1: ReturnCode result,
    2: list<Executor> executors,
}

// Extensions (operations): what an executor reports about itself ------------------------

struct TaskUsage {
    1: string id,
    2: i32 status,
    3: optional double cpu_time,  // CPU seconds of the running step so far (its cgroup)
    4: optional i64 memory,       // bytes now
    5: optional i32 pids,         // processes now
    6: optional i32 pid,          // the running step's process on the executor host
    7: optional map<string, i64> counters,  // its cgroup's counters now (sandbox/cgstats.py)
}

struct ExecutorStats {
    1: i32 slots,
    2: i32 vacant,
    3: string version,
    4: list<double> load,         // host load averages over 1, 5, 15 minutes
    5: i64 memory_total,          // host memory, bytes
    6: i64 memory_available,
    7: list<TaskUsage> tasks,
    8: optional string name,         // filled in by the judicator in answers
    9: optional string report_time,
}

struct StatsReturn {
    1: ReturnCode result,
    2: list<ExecutorStats> executors,
}

// Extensions (API v2) ------------------------------------------------------------------

struct SubmitReturn {
    1: ReturnCode result,
    2: string id,               // the task's 24-hex id
    3: bool created,            // false with OK: an identical task already had this key
    4: string detail,           // why, when result is not OK
}

struct TaskQuery {
    1: optional i32 user,
    2: optional list<i32> statuses,
    3: optional string start_time,
    4: optional string end_time,
    5: optional bool old_to_new,
    6: optional i32 limit,
    7: optional string after_time,  // keyset cursor: the last (add_time, id) seen
    8: optional string after_id,
    9: optional string key_prefix,  // only tasks whose client-chosen id starts with it
}

// Extensions (jobs, docs/jobs.md) ----------------------------------------------------------

// A job as a client gives it; its task template travels beside it (`jobs` argument 4).
struct JobSpec {
    1: string name,
    2: string type,                 // once, daemon, cron
    3: i32 replica,
    4: string cron,
    5: double interval,             // daemon: seconds from a run's end to its restart
    6: list<string> deps,
    7: i32 retry_attempts,          // once/cron: extra runs after a failed one
    8: double retry_backoff,        // seconds before the first retry, doubled for each next
    9: map<string, string> meta,    // e.g. Meproc's user and group names
}

// One running task of a job.
struct JobRun {
    1: string id,                   // the run's key
    2: string seed_id,              // its 24-hex task id
    3: string run_alias,            // name:replica
    4: optional string executor,
    5: i32 status,
}

// A job as clients see it: its spec, the template shown by user, priority and command, and
// where it stands.
struct Job {
    1: JobSpec spec,
    2: i32 user,
    3: i32 priority,
    4: string command,
    5: string status,               // waiting, running, scheduled, succeeded, failed, ...
    6: i32 generation,              // restarts so far
    7: string created,
    8: list<JobRun> tasks,          // its running tasks
    9: optional string last_start,
    10: optional string last_end,
    11: optional string blocked,    // why it will never start
    12: optional Task template,     // its task template (op inspect only)
}

struct JobReturn {
    1: ReturnCode result,
    2: string data,             // the answer as JSON, for gateways that predate 4 and 5
    3: string detail,           // why, when result is not OK
    4: optional Job job,        // create, get, restart, delete (unset: deleted already)
    5: optional list<Job> jobs, // list
}

// Extensions (files, docs/rpc.md "Files") ------------------------------------------------
// Content-addressed files (SHA-256), sent and read in chunks of at most 1 MiB.

struct Answer {
    1: ReturnCode result,
    2: string detail,           // why, when result is not OK
}

struct UploadReturn {
    1: ReturnCode result,
    2: string detail,
    3: string upload,           // the upload's id; "" = the file is stored already
}

struct FileReturn {
    1: ReturnCode result,
    2: string detail,
    3: FileRef file,
}

struct ReadReturn {
    1: ReturnCode result,
    2: string detail,
    3: binary data,             // raw bytes, at most the length asked (short at the end)
}

// Extensions (problems) ---------------------------------------------------------------

struct ProblemVersion {
    1: string problem,
    2: i32 version,
    3: FileRef spec,                // the version's spec document, a stored file
    4: string created,
    5: bool deleting,               // being deleted: no new task may name it
    6: string summary,              // JSON: cases, bytes, limits, groups, languages (api-v2.md)
}

struct Problem {
    1: string id,
    2: string title,
    3: string created,
    4: list<ProblemVersion> versions,  // oldest first
}

struct ProblemReturn {
    1: ReturnCode result,
    2: string detail,
    3: optional Problem problem,
    4: optional list<Problem> problems,
    5: optional i32 version,        // problem_version_add: the new version's number
}

struct VerdictChange {
    1: string before,               // "" for no judgement
    2: string after,
    3: i32 tasks,
}

struct Rejudge {
    1: string id,
    2: string problem,
    3: i32 version,                 // the version the tasks are judged against (0: latest)
    4: optional i32 from_version,   // only tasks judged against this version
    5: optional i32 user,           // only this user's tasks
    6: optional string verdict,     // only tasks with this verdict
    7: string state,                // applying, running, done, failed
    8: i32 total,
    9: i32 done,
    10: i32 pending,
    11: string created,
    12: string detail,
    13: optional i32 running,               // of pending: being judged now
    14: optional list<VerdictChange> changes,  // done tasks whose verdict moved (reads only)
}

struct RejudgeReturn {
    1: ReturnCode result,
    2: string detail,
    3: list<Rejudge> rejudges,
}

struct PageReturn {
    1: ReturnCode result,
    2: list<TaskBrief> tasks,
    3: bool more,
}

service Judicator {
    ReturnCode ping(),
    AddReturn add(1: Task task),
    ReturnCode cancel(1: string id),
    SearchReturn search(1: string id, 2: i32 user, 3: string start_time, 4: string end_time,
                        5: bool old_to_new, 6: i32 limit, 7: i32 page),
    GetReturn get(1: string id),
    // Extension: 5 wait_ms lets a new executor long-poll: when it has vacant slots and nothing is
    // assignable, the judicator holds the call up to wait_ms for work or a cancel. Old clients
    // never send it and get an immediate answer.
    // Extensions: 6 stats, the executor's statistics (kept by the judicator for
    // executor_stats); 7 languages, the presets this executor has (judging; an executor that
    // sends none is given only tasks without a language). Old executors send neither.
    // Extension: 8 features, what this executor can run beyond plain steps: "images" (steps in
    // an image, docs/images.md). An executor that sends none (an old one) is given no task
    // whose steps name an image: such a task waits for one that can.
    ReportReturn report(1: string executor, 2: list<Task> complete, 3: list<TaskBrief> executing,
                        4: i32 vacant, 5: i32 wait_ms, 6: ExecutorStats stats,
                        7: list<Language> languages, 8: list<string> features),
    ExecutorsReturn executors(),
    // Extension: ends a report long-poll of this executor early (e.g. a task just finished).
    // 2 draining (extension): the executor is stopping; assign it nothing from now on.
    ReturnCode wake(1: string executor, 2: bool draining),
    // Extension: the executor stops: its unfinished tasks go back to the queue (Retrying) and
    // it leaves executors() at once.
    ReturnCode leave(1: string executor),
    // Extension: hands finished tasks in without ending the executor's report long-poll
    // (recorded as a report's `complete` is: only if that executor still holds the task). OK
    // means each one was recorded or dropped as late: the executor forgets them all. Old
    // judicators do not know it: the executor then wakes its long-poll and reports them.
    ReturnCode hand_in(1: string executor, 2: list<Task> complete),
    // Extensions (API v2). A ref is a task's client-chosen key or its 24-hex id.
    // Adds each task; a task with a key is added only if the key is free (CONFLICT when the
    // key names a different task, OK with created=false when it names an identical one).
    list<SubmitReturn> submit(1: list<Task> tasks),
    // The whole task; with wait_ms > 0 the answer is held until it is done or wait_ms pass.
    // With lean, each case's input and standard and the steps' standard outputs (the result's
    // compile_output and execute_output) come empty, everything else as it is: for a caller
    // that shows the task, not one that runs it or serves its outputs. Old judicators ignore
    // lean and send them.
    GetReturn find(1: string ref, 2: i32 wait_ms, 3: bool lean),
    PageReturn list_tasks(1: TaskQuery query),
    // OK (queued for the running step), NOT_EXIST, CONFLICT (done), INVALID_INPUT (signum)
    ReturnCode send_signal(1: string ref, 2: i32 signum),
    // Cancel: OK, NOT_EXIST, CONFLICT (already done)
    ReturnCode stop(1: string ref),
    // Delete a done task with its files: OK, NOT_EXIST, CONFLICT (not done)
    ReturnCode remove(1: string ref),
    // Extension (operations): the latest statistics of live executors; name "" = all,
    // NOT_EXIST when that executor is not live.
    StatsReturn executor_stats(1: string name),
    // Extension (judging): the presets live executors have, with versions and counts.
    LanguagesReturn languages(),
    // Extension: jobs. op is create (5 job: the job, 4 template: its task; 3 spec, the job
    // as JSON, from gateways that predate 5), list, get, restart, stop or delete (2 name). OK,
    // NOT_EXIST, CONFLICT (name taken, or the job is being deleted), INVALID_INPUT (detail
    // says why). Later ops (a judicator that predates them answers INVALID_INPUT): define
    // (as create, but stopped until a restart), meta (2 name; 5 job: only its meta is taken),
    // respec and redefine (2 name; 4 template and 5's meta replace the job's; its runs stop
    // as for a restart; respec then starts it, redefine leaves it stopped), inspect (as get,
    // with the job's template, Job 12).
    JobReturn jobs(1: string op, 2: string name, 3: string spec, 4: Task template,
                   5: JobSpec job),
    // Extensions (files). An upload names the file's sha256 and size first (upload "" when it
    // is stored already), then sends chunk n at offset n × 1 MiB (1 MiB each but the last;
    // any judicator of the cluster takes any chunk), then ends: the file is kept only if its
    // bytes hash to the sha256 (INVALID_INPUT otherwise; the upload is gone either way).
    UploadReturn file_begin(1: string sha256, 2: i64 size),
    Answer file_put(1: string upload, 2: i64 offset, 3: binary data),
    FileReturn file_end(1: string upload),
    // At most 1 MiB from offset; NOT_EXIST for a file the store does not have.
    ReadReturn file_read(1: string sha256, 2: i64 offset, 3: i32 length),
    // Extensions (problems). A version is added as its spec document (JSON, docs/judging.md)
    // whose files are stored already; its number is answered. Deleting a version (or, with
    // version 0, the whole problem) that tasks name is CONFLICT.
    ProblemReturn problem_create(1: string id, 2: string title),
    ProblemReturn problem_get(1: string id),
    ProblemReturn problem_list(),
    ProblemReturn problem_version_add(1: string id, 2: binary spec),
    Answer problem_delete(1: string id, 2: i32 version),
    // Rejudge: 1 `spec` names the problem, the target version and the filters; answered
    // with the new rejudge. `rejudges`: a problem's (id "") or one (by id).
    RejudgeReturn rejudge(1: Rejudge spec),
    RejudgeReturn rejudges(1: string problem, 2: string id),
    // Extensions (images). A version is added as its tar, a stored file (uploaded through
    // the file calls first); its number is the next for the name. image_list: every image's
    // versions, or (name) one image's. Deleting a version takes its name away: NOT_EXIST when
    // there is none; tasks that name it keep its tar until they are removed.
    ImageReturn image_add(1: string name, 2: FileRef file, 3: string note),
    ImageReturn image_list(1: string name),
    Answer image_delete(1: string name, 2: i32 version),
}
