"""GET /service/<id>: Docker's ContainerInspect document for a service, from its job, its
latest run (a task) and the pid its executor reported. Fields Khala has no counterpart for
are Docker's empty values (empty strings, null); `Khala` (an addition) names the job, its
status, the run's task and executor, and the environment the next start gets. Pure."""

from __future__ import annotations

from typing import Any

from khala.gateway.duxcore.spec import BIND_WORKDIR as BIND_INSIDE
from khala.gateway.duxcore.spec import Params, Record, argv_of
from khala.gateway.duxcore.stats import docker_id, rfc3339
from khala.jobs.model import JobView
from khala.model import Status, Task

#: Job statuses whose service runs no process and starts none by itself.
HALTED = frozenset({"stopped", "succeeded", "failed", "blocked"})


def state_of(job: JobView, run: Task | None, pid: int | None) -> dict[str, Any]:
    """Docker's State: created (never started, or its start is queued), running, exited,
    removing."""
    running = run is not None and not run.done and run.status == Status.RUNNING
    if job.status == "deleting":
        status = "removing"
    elif running:
        status = "running"
    elif run is None or (not run.done and job.status not in HALTED):
        status = "created"
    else:
        status = "exited"
    report = run.result.execute_report if run is not None and run.result else None
    exit_code = 0
    if report is not None and run is not None and run.done:
        exit_code = report.exit_code if report.exit_code is not None else (
            128 + report.signal if report.signal else 0)
    return {"Status": status, "Running": running, "Paused": False, "Restarting": False,
            "OOMKilled": bool(report and report.reason == "memory_limit"), "Dead": False,
            "Pid": (pid or 0) if running else 0, "ExitCode": exit_code,
            "Error": "" if run is None or run.status != Status.UNKNOWN_ERROR else "khala: "
            + (run.result.execute_error.decode(errors="replace")[-500:] if run.result else ""),
            "StartedAt": rfc3339(run.add_time if run else None),
            "FinishedAt": rfc3339(run.report_time if run and run.done else None)}


def config_of(record: Record, params: Params) -> dict[str, Any]:
    return {"Hostname": params.hostname or "khala", "Domainname": "",
            "User": params.user or "", "AttachStdin": params.open_stdin,
            "AttachStdout": True, "AttachStderr": True, "ExposedPorts": None, "Tty": False,
            "OpenStdin": params.open_stdin, "StdinOnce": False,
            "Env": [f"{k}={v}" for k, v in sorted(record.env.items())],
            "Cmd": list(params.cmd or []), "Image": params.image, "Volumes": None,
            "WorkingDir": params.working_dir or BIND_INSIDE, "Entrypoint": None,
            "NetworkDisabled": params.network_disabled is not False,
            "Labels": {}, "Shell": list(params.shell) if params.shell else None}


def host_config_of(params: Params) -> dict[str, Any]:
    return {"Binds": [f"{params.bind_dir}:{BIND_INSIDE}"],
            "NetworkMode": "none" if params.network_disabled is not False else "slirp4netns",
            "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "Memory": params.max_ram or 0, "CpuPeriod": 100_000 if params.max_cpu else 0,
            "CpuQuota": params.max_cpu or 0, "Privileged": False, "ReadonlyRootfs": True}


def inspect_document(record: Record, job: JobView, run: Task | None,
                     pid: int | None) -> dict[str, Any]:
    params = Params.model_validate(record.params)
    argv = argv_of(params)
    return {
        "Id": docker_id(record.id), "Created": rfc3339(record.created or job.created),
        "Path": argv[0] if argv else "", "Args": argv[1:],
        "State": state_of(job, run, pid), "Image": params.image,
        "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "", "LogPath": "",
        "Name": "/" + record.id, "RestartCount": job.generation, "Driver": "khala",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None, "HostConfig": host_config_of(params),
        "Mounts": [{"Type": "bind", "Source": params.bind_dir, "Destination": BIND_INSIDE,
                    "Mode": "", "RW": True, "Propagation": ""}],
        "Config": config_of(record, params),
        "NetworkSettings": {"Ports": {}, "Networks": {}},
        "Khala": {"job": job.name, "status": job.status,
                  "task": None if run is None else run.id,
                  "executor": None if run is None else run.executor,
                  "pending_env": dict(record.pending_env), "bind": record.bind},
    }
