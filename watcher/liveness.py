"""Whether a lease holder is provably gone: a process of this machine and boot that has exited.

A lease held by a killed process would block the next watcher for a whole TTL. When the holder
ran on this same machine, in this same boot and PID namespace, the kernel can say it is gone:
its PID is free (the kernel says so, not only /proc, which may hide other users' processes),
a zombie, or now names a process started at another time (reused). Anywhere else (another
host, container or boot, a platform without /proc) nothing is provable, and the TTL stands.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def this_process() -> dict[str, Any] | None:
    """Return what identifies this process to another on the same machine (None: cannot tell)."""
    try:
        return {
            "host": socket.gethostname(),
            "boot": (PROC / "sys/kernel/random/boot_id").read_text().strip(),
            "pid_namespace": os.readlink(PROC / "self/ns/pid"),
            "pid": os.getpid(),
            "started": _start_time(os.getpid()),
        }
    except (OSError, ValueError):
        return None


def provably_gone(holder: Mapping[str, Any] | None) -> bool:
    """Tell whether the process `holder` (as `this_process()` described it) has exited."""
    here = this_process()
    if not holder or here is None:
        return False
    if any(holder.get(key) != here[key] for key in ("host", "boot", "pid_namespace")):
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        return _start_time(pid) != holder.get("started")
    except FileNotFoundError:
        # No /proc entry: no such process, or one /proc hides from us (mounted with
        # hidepid). Only the kernel's answer to a null signal tells them apart.
        return _no_such_process(pid)
    except (OSError, ValueError):
        return False


def _no_such_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it exists, under another user
    return False  # it exists, and /proc would not show it: nothing is provable


def _start_time(pid: int) -> int | None:
    """Return when `pid` started, in clock ticks since boot (None for a zombie: it has exited)."""
    stat = (PROC / str(pid) / "stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:  # zombie or dead: exited, only not yet reaped
        return None
    return int(fields[19])  # field 22 of proc(5), `starttime`: fields[0] is field 3
