"""Jobs: named groups of tasks run once, kept running (daemon) or on a cron schedule, with
replicas, dependencies and retries (docs/jobs.md). This package is pure: the cron parser
(`cron`), the job model and run keys (`model`), and the planner (`plan`) that decides, from a
job's persisted state and what its current tasks are doing, which tasks to start. The
judicator's scheduler (khala/judicator/scheduler.py) does the IO."""
