"""Pieces every benchmark shares: a free loopback port, the environment and commands for the
app, a gunicorn server, the CPU a process tree used, a description of the machine the figures
were taken on, and the results file each run writes to ``bench/results/``."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BACKENDS = ("sqlite", "postgresql")
# The demo is a function of its date (``seed-demo --now``): benchmarks load it as of a day when
# the twentieth-anniversary campaign they measure is live, so that it exists whatever today is.
DEMO_NOW = "2026-12-02T17:00:00+00:00"
DEMO_SLUG = "twenty-years"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_backends(parser, opts) -> None:
    """Turn ``opts.backends`` ("sqlite,postgresql") into a list, refusing an unknown one."""
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    unknown = set(opts.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")


def scratch_database(backend: str, work: Path, name: str, stack):
    """A new, empty database: a SQLite file in ``work``, or a database in a throwaway
    PostgreSQL cluster (tests/support/pgcluster.py) that ``stack`` stops. Returns its URL and
    the cluster (None for SQLite)."""
    if backend == "sqlite":
        return f"sqlite:///{work / f'{name}.db'}", None
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.pgcluster import PgCluster

    cluster = PgCluster()
    stack.callback(cluster.stop)
    cluster.start()
    return cluster.create_database(name), cluster


def base_env(**extra: str) -> dict[str, str]:
    """This environment for the app's processes, less what would change what is measured (the
    debug mode, another payment provider), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLASK_DEBUG", "FLASK_ENV") and not k.startswith("STRIPE_")}
    env.update(extra)
    return env


def run_checked(cmd: list[str], env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return result.stdout


def load_text(loadavg) -> str:
    return " / ".join(f"{x:.2f}" for x in loadavg)


def measured_machine() -> dict:
    """``machine()``, with a warning when other work is already keeping the CPUs busy."""
    info = machine()
    cpus = info.get("cpus_usable") or info["cpus"] or 1
    if info["loadavg_before"][0] > 0.5 * cpus:
        print(f"warning: load average {load_text(info['loadavg_before'])} on {cpus} CPU(s): "
              "other work is running, expect noisy figures", flush=True)
    return info


def write_results(name: str, **fields) -> Path:
    """``bench/results/<name>-<UTC time>.json`` with the fields given; returns its path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"benchmark": name, "at": stamp, **fields}, indent=2,
                               default=str) + "\n")
    return path


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


def tree_cpu(root_pid: int | None) -> float | None:
    """CPU seconds used so far by a process and its children, live or reaped (Linux ``/proc``):
    what a server spent, whatever else the machine was doing meanwhile."""
    if root_pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    found = False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            fields = stat.read_text().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if pid == root_pid or int(fields[1]) == root_pid:
            found = found or pid == root_pid
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick if found else None


class Server:
    """``gunicorn -w <workers> -b 127.0.0.1:<port> <app>`` in its own process group, healthy
    once its ``/healthz`` answers 200. gunicorn reads the repository's gunicorn.conf.py (its
    working directory), but for ``WEB_MAX_REQUESTS``: 0 unless ``env`` says otherwise, so no
    worker is replaced during a measurement (the production default, 2,000, replaces each
    worker of a busy app every few seconds here, and a new worker builds the app anew: seconds
    in which it answers nothing, measured as the app's, not as the bare app's)."""

    def __init__(self, app_spec: str, env: dict[str, str], log_path: Path, *, workers: int):
        self.app_spec = app_spec
        self.workers = workers
        self.env = {"WEB_MAX_REQUESTS": "0", **env}
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(self.workers),
               "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", self.app_spec]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        try:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.app_spec} exited ({self.proc.returncode}):\n"
                                   + self.log_tail())
            if self.healthy():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.app_spec} not healthy after {timeout}s:\n"
                           + self.log_tail())

    def healthy(self, timeout: float = 2) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=timeout) as response:
                return response.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu(self) -> float | None:
        """CPU seconds of the gunicorn master and its workers so far."""
        return tree_cpu(self.proc.pid if self.proc else None)

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        # The master's process group: any worker it left behind, then the master itself.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def bench_session(name: str) -> Iterator[tuple[Path, ExitStack, dict]]:
    """What a benchmark's ``main`` does around its runs: the repository importable, no
    ``DATABASE_URL`` inherited, the machine described (``measured_machine``), a temporary
    folder removed at the end with whatever else is put on the stack; yields (folder, stack,
    machine), and records the load average once everything is stopped."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.pop("DATABASE_URL", None)
    info = measured_machine()
    work = Path(tempfile.mkdtemp(prefix=f"newsfund-bench-{name}-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        yield work, stack, info
    info["loadavg_after"] = os.getloadavg()


def run_backends(name: str, opts, run_backend: Callable[..., dict]) -> tuple[list[dict], dict]:
    """``run_backend(backend, opts, folder, stack)`` for each of ``opts.backends``, each with a
    stack of its own (its servers stopped before the next starts), in a ``bench_session``;
    returns the results and the machine."""
    results = []
    with bench_session(name) as (work, _, info):
        for backend in opts.backends:
            with ExitStack() as backend_stack:
                results.append(run_backend(backend, opts, work, backend_stack))
    return results, info
