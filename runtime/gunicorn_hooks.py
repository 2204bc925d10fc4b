"""gunicorn server hooks of the runtime (used with PROMETHEUS_MULTIPROC_DIR, see runtime/metrics.py)."""

import os


def child_exit(server, worker) -> None:
    """Drop the live-gauge files of a worker that exited (multiprocess metrics only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
