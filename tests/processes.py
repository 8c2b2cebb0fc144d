"""Helpers for tests that watch the processes of a run: alive or not, pool processes."""

from __future__ import annotations

from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _children(pid: int) -> list[tuple[int, bytes]]:
    """(pid, command line) of each child of ``pid``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append((int(proc.name), cmdline))
    return found


def spawned_children(pid: int) -> list[int]:
    """The multiprocessing ``spawn`` children of ``pid`` (worker processes of any pool)."""
    return [
        child
        for child, cmdline in _children(pid)
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline
    ]


def fork_servers(pid: int) -> list[int]:
    """The multiprocessing fork server(s) ``pid`` started."""
    return [c for c, cmdline in _children(pid) if b"multiprocessing.forkserver" in cmdline]


def forked_children(pid: int) -> list[int]:
    """The processes the fork server of ``pid`` forked (the scoring processes)."""
    return [child for server in fork_servers(pid) for child, _ in _children(server)]
