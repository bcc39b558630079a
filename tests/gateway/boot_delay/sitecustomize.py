"""Test-only fault injection, loaded by a gateway started with this directory on PYTHONPATH.

It widens the window between a gunicorn worker's fork() and the moment it installs its own
signal handlers (gunicorn issue #1910) from microseconds to KHALA_TEST_WORKER_BOOT_DELAY
seconds, and announces each worker entering that window by creating
`$KHALA_TEST_BOOT_MARKER.<pid>`. The product code is not changed: only gunicorn's
`Worker.init_process` is wrapped, before it calls the original.
"""

import os
import time

_delay = float(os.environ.get("KHALA_TEST_WORKER_BOOT_DELAY", "0") or 0)
_marker = os.environ.get("KHALA_TEST_BOOT_MARKER", "")

if _delay > 0:
    from gunicorn.workers import base

    _original = base.Worker.init_process

    def _slow_init_process(self):  # type: ignore[no-untyped-def]
        if _marker:
            with open(f"{_marker}.{os.getpid()}", "w"):
                pass
        time.sleep(_delay)
        _original(self)

    base.Worker.init_process = _slow_init_process
