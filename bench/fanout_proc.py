"""What ``bench.fanout`` reads from /proc about the processes it measures and runs: which
process listens on a port, its resident memory and the CPU time it has used; and which
CPUs each process may run on (every thread of it)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        path = PROC / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def pid_listening(port: int) -> int:
    """The process holding the listening socket on ``port`` (ours to read)."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        raise LookupError(f"nothing listens on port {port}")
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return int(entry.name)
    raise LookupError(f"cannot see the process listening on port {port}")


def rss_kib(pid: int) -> int:
    """Resident set size (VmRSS), KiB."""
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    with contextlib.suppress(OSError):
        stat = (PROC / str(pid) / "stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def pin(pid: int, cpus: set[int]) -> int:
    """Let every thread of ``pid`` run only on ``cpus`` (threads it starts later inherit
    that from the thread that starts them); returns how many threads were pinned."""
    pinned = 0
    for task in (PROC / str(pid) / "task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cpus)
            pinned += 1
    return pinned


def affinity(pid: int) -> set[int]:
    """The CPUs any thread of ``pid`` may run on."""
    cpus: set[int] = set()
    for task in (PROC / str(pid) / "task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            cpus |= os.sched_getaffinity(int(task.name))
    return cpus


def cpu_list(cpus: set[int]) -> str:
    return ",".join(map(str, sorted(cpus)))
