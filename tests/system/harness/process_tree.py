"""What runs under a stack, read from ``/proc``: descendants, marked processes, leftovers.

Task runners put themselves in process groups of their own, so a group kill of the
scheduler does not reach them. A stack therefore lists every descendant of its components
before ending their groups, then kills whatever of that list still runs (same PID and start
time). Processes also carry ``MARKER_VAR=<stack id>`` in their environment, a second net for
those that were orphaned (not for retitled ones: setproctitle overwrites the environment
block). Nothing else on the machine is touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from .processes import MARKER_VAR


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[1]), int(fields[19])


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time) of every live process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def descendants(roots: Iterable[int]) -> dict[int, int]:
    """Every live descendant of `roots`, with its start time (pid -> start time)."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def processes_with_marker(value: str) -> list[int]:
    """PIDs whose environment has MARKER_VAR=value.

    Only for processes that kept their environment block: setproctitle (Airflow's task
    runners and executor workers) overwrites it, so those are found by ancestry instead.
    """
    needle = f"{MARKER_VAR}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def kill_marked(value: str) -> list[int]:
    """SIGKILL every process carrying this stack's marker; returns their PIDs."""
    killed = processes_with_marker(value)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return killed


def kill_if_same(processes: Mapping[int, int]) -> list[int]:
    """SIGKILL each pid that still runs the same process (same start time)."""
    killed = []
    for pid, started in processes.items():
        stat = proc_stat(pid)
        if stat is not None and stat[1] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def pids_matching(pattern: str) -> list[int]:
    """PIDs whose command line (as `ps` shows it, proctitle included) matches `pattern`."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    regex = re.compile(pattern)
    pids = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if regex.search(args) and int(pid) != os.getpid():
            pids.append(int(pid))
    return pids
