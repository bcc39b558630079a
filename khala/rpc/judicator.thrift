// The Judicator service. Field ids 1..10 and their types are the wire contract that existing
// Khala clients speak; never renumber or retype them. Extensions are optional fields with new ids.

namespace py khala_judicator

// Resource report of one step (compile or execute). Extension, not in the original protocol.
struct StepReport {
    1: optional i32 exit_code,     // exit status when the process exited normally
    2: optional i32 signal,        // signal number when the process was killed by a signal
    3: optional bool core_dump,
    4: optional double time,       // CPU seconds, user + sys
    5: optional double wall_time,  // seconds
    6: optional i64 memory,        // peak bytes
    7: optional string reason,     // ok, nonzero_exit, signaled, time_limit, wall_limit, ...
}

struct Compile {
    1: binary source,               // zip archive, empty = none
    2: binary command,              // zlib-compressed UTF-8
    3: i32 timeout,                 // seconds, 0 = none
    // Extensions
    4: optional i64 memory_limit,   // bytes
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
}

struct Result {
    1: binary compile_output,       // zlib-compressed UTF-8
    2: binary compile_error,
    3: binary execute_output,
    4: binary execute_error,
    // Extensions
    5: optional StepReport compile_report,
    6: optional StepReport execute_report,
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
}

struct TaskBrief {
    1: string id,
    2: i32 user,
    3: string add_time,
    4: bool done,
    5: i32 status,
    6: string executor,
    7: string report_time,
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

struct ReportReturn {
    1: ReturnCode result,
    2: list<TaskBrief> cancel,
    3: list<Task> assign,
}

struct ExecutorsReturn {
    1: ReturnCode result,
    2: list<Executor> executors,
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
    ReportReturn report(1: string executor, 2: list<Task> complete, 3: list<TaskBrief> executing,
                        4: i32 vacant, 5: i32 wait_ms),
    ExecutorsReturn executors(),
    // Extension: ends a report long-poll of this executor early (e.g. a task just finished).
    // 2 draining (extension): the executor is stopping; assign it nothing from now on.
    ReturnCode wake(1: string executor, 2: bool draining),
    // Extension: the executor stops: its unfinished tasks go back to the queue (Retrying) and
    // it leaves executors() at once.
    ReturnCode leave(1: string executor),
}
