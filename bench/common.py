"""Pieces every benchmark shares: a free loopback port and a description of the machine the
figures were taken on (written into each results file)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> dict:
    """CPUs, load, tool versions and the commit, so a figure can be read in its context."""
    info = {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg_before": os.getloadavg()}
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        models = [line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else None
    except OSError:
        pass
    for name, cmd in (("wrk", ["wrk", "--version"]),
                      ("gunicorn", [sys.executable, "-m", "gunicorn", "--version"]),
                      ("git_commit", ["git", "rev-parse", "--short", "HEAD"])):
        try:
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10)
            info[name] = (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            info[name] = None
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app", "migrations",
                                "templates"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout
        info["app_tree_modified"] = bool(dirty.strip())
    except (OSError, subprocess.TimeoutExpired):
        info["app_tree_modified"] = None
    return info
