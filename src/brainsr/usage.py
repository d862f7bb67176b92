"""The resources a ``brainsr`` command used, logged at its end and read back by ``brainsr report benchmarks``."""

from __future__ import annotations

import time

__all__ = ["RESOURCES_TAG", "resources_used"]

#: Tag of the log line with the command's own CPU time (read back by ``brainsr report benchmarks``).
RESOURCES_TAG = "resources used:"


def resources_used(start: float) -> dict[str, float]:
    """CPU seconds (user + system, every thread and waited-for child), wall seconds since ``start``, peak RSS
    (MB) of this process: exact, where Snakemake's benchmark samples CPU every few seconds and misses the end."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {"cpu_s": round(cpu, 2), "wall_s": round(time.perf_counter() - start, 2), "max_rss_mb": me.ru_maxrss / 1024}
