"""A process's parent and CPU time from Linux's `/proc/PID/stat`, for the benchmarks that count
the CPU of processes they do not reap themselves (a server, Spark's JVM and Python workers)."""

from __future__ import annotations

import os
from pathlib import Path


def stat(pid: int) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds so far) of `pid`.

    Raises:
        OSError: the process is gone (or was never there).
    """
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
