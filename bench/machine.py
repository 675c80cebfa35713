"""What the figures were measured on: the machine, the OS, Python and the PostgreSQL server."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psycopg

PG_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers",
               "max_wal_size", "work_mem", "maintenance_work_mem", "effective_io_concurrency",
               "wal_compression", "checkpoint_timeout")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return f"{line.split('=', 1)[1].strip(chr(34))} ({platform.system()} {platform.release()})"
    return platform.platform()


def describe_machine() -> dict[str, Any]:
    memory = memory_bytes()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": None if memory is None else round(memory / 1024**3, 1),
        "os": os_name(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        # Other work on the machine as the run starts: figures under load are not comparable.
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def disk_of(path: str) -> dict[str, Any]:
    """The file system and the block device under `path`, and whether it spins, if knowable."""
    found: dict[str, Any] = {"path": path}
    try:
        real = os.path.realpath(path)
        device = os.stat(real).st_dev
    except OSError:
        return {**found, "kind": "unknown (not readable here)"}
    best = ("", "", "")
    for line in _read("/proc/mounts").splitlines():
        parts = line.split()
        if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")) \
                and len(parts[1]) >= len(best[1]):
            best = (parts[0], parts[1], parts[2])
    found.update({"mount": best[1], "filesystem": best[2], "device": best[0]})
    if best[2] in ("tmpfs", "ramfs"):
        return {**found, "kind": "RAM (tmpfs)"}
    block = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}")
    try:
        resolved = block.resolve()
    except OSError:
        return {**found, "kind": "unknown"}
    queue = resolved / "queue"
    if not queue.exists():  # a partition: the queue is its disk's
        queue = resolved.parent / "queue"
    rotational = _read(str(queue / "rotational")).strip()
    name = resolved.name if (resolved / "queue").exists() else resolved.parent.name
    kind = {"0": "SSD (not rotational)", "1": "rotational"}.get(rotational, "unknown")
    if name.startswith(("vd", "xvd")):
        # A virtual machine's disk: what backs it is the host's; the flag is what it reports.
        kind = f"virtual disk ({name}, virtio; reports {kind})"
    elif name.startswith("nvme"):
        kind = f"NVMe SSD ({name})"
    return {**found, "block_device": name, "kind": kind}


def describe_postgres(url: str) -> dict[str, Any]:
    """Version and the settings that decide write speed; the data directory's disk when the
    server is local and tells where it is (superusers only)."""
    with psycopg.connect(url, autocommit=True) as connection:
        version = connection.execute("SHOW server_version").fetchone()
        settings: dict[str, Any] = {}
        for name in PG_SETTINGS:
            try:
                row = connection.execute(f"SHOW {name}").fetchone()
            except psycopg.Error:
                continue
            settings[name] = row[0] if row else None
        try:
            row = connection.execute("SHOW data_directory").fetchone()
            data_directory = row[0] if row else None
        except psycopg.Error:
            data_directory = None
    host = psycopg.conninfo.conninfo_to_dict(url.replace("+psycopg", "")).get("host")
    local = host in (None, "", "localhost", "127.0.0.1", "::1") or str(host).startswith("/")
    disk = (disk_of(data_directory) if data_directory and local
            else {"kind": "unknown (remote server or data directory not visible)"})
    return {"version": version[0] if version else None, "settings": settings,
            "data_directory": data_directory, "disk": disk}
