"""Stripe events applied per second by one ``flask jobs worker`` (jobs on RQ).

``python -m bench worker [--backends postgresql] [--events 3000] [--api-latency-ms 0]
[--cprofile FILE]``

For each backend (default PostgreSQL, the issue's; ``sqlite`` for comparison): a fresh database
with ``--events`` pending one-time gifts (the same preparation as ``bench/webhooks.py``), a
throwaway Redis, the Stripe API stub, and the app configured as in production (``REDIS_URL``,
the Stripe provider, mail to an outbox folder). Then:

1. one ``flask jobs worker --burst`` on the empty queue (twice, the cheaper kept): what starting
   a worker costs, taken off the figures below;
2. the web side stores the signed ``payment_intent.succeeded`` events and queues one job each,
   as ``POST /webhooks/stripe`` does with jobs on RQ (the app in one process behind the Flask
   test client: its CPU per event is printed, but ``python -m bench webhooks --jobs rq`` is the
   figure for the web side under gunicorn);
3. one ``flask jobs worker --burst`` applies the queue: for each event, the charge, the fee
   from the Stripe stub, the gift paid, the tax receipt numbered and mailed (an ``.eml`` file).
   Timed from the first event it stamped processed to the last; its CPU time (``wait4``'s
   rusage, less the start-up measured in 1) and PostgreSQL's (``/proc``) per event;
4. checks: every event processed once, one charge, settled fee, paid gift, numbered receipt
   (no gaps) and sent receipt email per event, no gift paid twice, one API call each.

``--cprofile FILE`` runs the draining worker under cProfile, timed by its CPU time (``python -m
pstats FILE``); ``--py-spy FILE`` samples it with py-spy instead (collapsed stacks, on-CPU only;
no slowdown, so the proportions are the real ones: ``python -m bench.stacks FILE`` sums them).
Results go to ``bench/results/worker-<UTC time>.json``. Goal (issue 12): >= 300 events/s per
worker on PostgreSQL, so about 3 ms of CPU per event; ``--strict`` makes a miss exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import webhooks as wh
from bench.common import (
    BACKENDS,
    ROOT,
    base_env,
    check_backends,
    load_text,
    measured_machine,
    run_checked,
    scratch_database,
    tree_cpu,
    write_results,
)

GOAL = 300.0

#: The web side in one process: store and queue each signed event as the webhook view does.
FILL = """
import json, sys, time
from app import create_app

deliveries = sys.argv[1]
app = create_app()
client = app.test_client()
lines = open(deliveries, "rb").read().splitlines()
cpu, wall = time.process_time(), time.perf_counter()
for signature, body in zip(lines[0::2], lines[1::2]):
    response = client.post("/webhooks/stripe", data=body, headers={
        "Stripe-Signature": signature.decode(), "Content-Type": "application/json"})
    answer = response.get_json(silent=True) or {}
    if response.status_code != 200 or answer.get("duplicate"):
        sys.exit(f"{response.status_code} {response.get_data(as_text=True)}")
print(json.dumps({"events": len(lines) // 2, "cpu_s": time.process_time() - cpu,
                  "wall_s": time.perf_counter() - wall}))
"""


#: ``flask`` under cProfile timed by CPU (this process's, not the wall clock: on a shared
#: machine, waiting for a core would show as time spent in whatever was running).
PROFILED = """
import cProfile, runpy, sys, time
out = sys.argv.pop(1)
sys.argv[0] = "flask"
profiler = cProfile.Profile(time.process_time)
try:
    profiler.runcall(runpy.run_module, "flask", run_name="__main__")
finally:
    profiler.dump_stats(out)
"""


#: py-spy (the ``bench`` extra, which ``make bench`` installs): beside this Python, else on
#: the PATH.
PY_SPY = (str(Path(sys.executable).with_name("py-spy"))
          if Path(sys.executable).with_name("py-spy").exists() else "py-spy")


def run_worker(env: dict[str, str], log_path: Path, cprofile: str | None = None,
               py_spy: str | None = None) -> dict:
    """One ``flask jobs worker --burst`` to the end of the queue: its wall and CPU seconds."""
    flask = ["-c", PROFILED, cprofile] if cprofile else ["-m", "flask"]
    cmd = [sys.executable, *flask, "--app", "app", "jobs", "worker", "--burst",
           "--log-level", "WARNING"]
    if py_spy:
        # --gil: the thread holding the GIL only, so that the threads asking Stripe for a
        # batch's charges (app.payments.events._prefetch_details) count for what they run,
        # not for their waits for it (time in C with the GIL released is left out).
        cmd = [PY_SPY, "record", "--format", "raw", "--rate", "200", "--gil",
               "--output", py_spy, "--", *cmd]
    with open(log_path, "ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"the worker exited {proc.returncode}; see {log_path}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "user_s": usage.ru_utime, "system_s": usage.ru_stime}


def applied_span(ledger: wh.Ledger) -> tuple[int, float]:
    """How many events are processed, and the seconds from the first stamped to the last."""
    from datetime import datetime

    from sqlalchemy import text

    with ledger.engine.connect() as conn:
        first, last, applied = conn.execute(text(
            "SELECT min(processed_at), max(processed_at), count(*) FROM provider_event "
            "WHERE processed_at IS NOT NULL")).one()
    if isinstance(first, str):  # SQLite hands the stored text back
        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return applied, (last - first).total_seconds() if applied > 1 else 0.0


def check(before: dict, after: dict, events: int, stub_hits: int, applied: int) -> dict:
    delta = {k: after[k] - before[k] for k in after
             if after[k] is not None and before[k] is not None}
    problems = []
    if applied != events:
        problems.append(f"{applied} events processed of {events} queued")
    for name in ("events", "payments", "fees", "gifts_paid", "receipts", "receipts_numbered"):
        if delta.get(name, events) != events:
            problems.append(f"{delta[name]} new {name} for {events} events")
    for name in ("gifts_paid_twice", "receipt_number_gaps"):
        if after[name]:
            problems.append(f"{name.replace('_', ' ')}: {after[name]}")
    if stub_hits != events:
        problems.append(f"{stub_hits} Stripe API calls for {events} events")
    return {"ok": not problems, "problems": problems, "delta": delta,
            "stripe_api_calls": stub_hits}


def run_backend(backend: str, opts: argparse.Namespace, work: Path, stack: ExitStack) -> dict:
    from tests.support.redisserver import RedisServer

    print(f"\n[{backend}] preparing the database ...", flush=True)
    url, cluster = scratch_database(backend, work, "bench", stack)
    db_pid = int((cluster.data / "postmaster.pid").read_text().split()[0]) if cluster else None
    stub = wh.StripeStub(latency=opts.api_latency_ms / 1000)
    stack.callback(stub.stop)
    stub.start()
    redis = RedisServer()
    stack.callback(redis.stop)
    env = base_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32),
                   MAIL_OUTBOX_DIR=str(work / "outbox"), REDIS_URL=redis.start().url,
                   STRIPE_SECRET_KEY=wh.SECRET_KEY, STRIPE_WEBHOOK_SECRET=wh.WEBHOOK_SECRET,
                   STRIPE_API_BASE=stub.url)
    started = time.perf_counter()
    gifts = wh.prepare_database(env, opts.events, work)
    events = wh.fresh_events(gifts, first=1)
    for (_, body), (_, total, _) in zip(events, gifts, strict=True):
        stub.intents[json.loads(body)["data"]["object"]["id"]] = total
    print(f"  {len(gifts):,} pending one-time gifts ({time.perf_counter() - started:.1f}s)",
          flush=True)

    # Twice, the cheaper kept: the first may also compile the app's changed modules to bytecode.
    idle = min((run_worker(env, work / "worker.log") for _ in range(2)),
               key=lambda run: run["cpu_s"])
    print(f"  a worker on the empty queue: {idle['cpu_s']:.2f}s CPU, {idle['wall_s']:.2f}s "
          "(start-up, taken off below)", flush=True)

    ledger = wh.Ledger(url)
    stack.callback(ledger.close)
    before = ledger.counts()
    deliveries = wh.write_deliveries(work / "deliveries.txt", [body for _, body in events])
    fill = json.loads(run_checked([sys.executable, "-c", FILL, str(deliveries)], env,
                                  timeout=1800).strip().splitlines()[-1])
    print(f"  web side (test client, one process): {fill['events']:,} events stored and queued "
          f"in {fill['wall_s']:.1f}s, {1000 * fill['cpu_s'] / fill['events']:.2f} ms CPU each",
          flush=True)

    hits, db_cpu = stub.hits, tree_cpu(db_pid)
    load_before = os.getloadavg()
    drained = run_worker(env, work / "worker.log", opts.cprofile, opts.py_spy)
    load_after = os.getloadavg()
    db_cpu_after = tree_cpu(db_pid)
    applied, span = applied_span(ledger)
    after = ledger.counts()
    n = len(events)
    outcome = check(before, after, n, stub.hits - hits, applied)
    cpu_ms = 1000 * (drained["cpu_s"] - idle["cpu_s"]) / n
    result = {
        "backend": backend, "events": n, "idle_worker": idle, "fill": fill, "drain": drained,
        "span_s": span, "events_per_s": (applied - 1) / span if span else None,
        "worker_cpu_ms": cpu_ms,
        "db_cpu_ms": (1000 * (db_cpu_after - db_cpu) / n
                      if db_cpu is not None and db_cpu_after is not None else None),
        "loadavg": [load_before, load_after], "check": outcome,
        "cprofile": opts.cprofile, "py_spy": opts.py_spy,
    }
    rate = result["events_per_s"]
    print(f"  one worker applied {applied:,} events in {span:.1f}s: "
          f"{rate:.0f} events/s; CPU per event: worker {cpu_ms:.2f} ms"
          + (f", PostgreSQL {result['db_cpu_ms']:.2f} ms" if result["db_cpu_ms"] else "")
          + f"; at most {1000 / cpu_ms:.0f}/s with a core of its own"
          + f" (load average {load_text(load_before)} -> {load_text(load_after)})", flush=True)
    print("  check: " + ("OK, " if outcome["ok"] else "FAILED: " + "; ".join(
        outcome["problems"]) + "; ") + ", ".join(f"{v} {k}" for k, v in outcome["delta"].items())
        + f", {outcome['stripe_api_calls']} API calls", flush=True)
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench worker",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="postgresql",
                        help=f"comma-separated, of: {', '.join(BACKENDS)} (default: postgresql)")
    parser.add_argument("--events", type=int, default=3000,
                        help="pending gifts, so events applied (default 3000)")
    parser.add_argument("--api-latency-ms", type=float, default=0.0,
                        help="delay of each Stripe API stub answer (default 0)")
    parser.add_argument("--cprofile", metavar="FILE",
                        help="run the draining worker under cProfile, stats to FILE")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="sample the draining worker with py-spy (on-CPU stacks, collapsed "
                             "text) to FILE; its CPU figure then includes py-spy's own")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when PostgreSQL misses the goal")
    opts, _ = parser.parse_known_args(argv)  # the other benchmarks' options are ignored
    check_backends(parser, opts)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    info = measured_machine()
    results = []
    work = Path(tempfile.mkdtemp(prefix="newsfund-bench-worker-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        for backend in opts.backends:
            folder = work / backend
            folder.mkdir()
            with ExitStack() as backend_stack:
                results.append(run_backend(backend, opts, folder, backend_stack))
    info["loadavg_after"] = os.getloadavg()
    print(f"\nload average before {load_text(info['loadavg_before'])}, after "
          f"{load_text(info['loadavg_after'])}; goal >= {GOAL:.0f} events/s per worker on "
          "PostgreSQL")
    path = write_results("worker", goal_events_per_s=GOAL, machine=info, results=results,
                         settings={"events": opts.events, "api_latency_ms": opts.api_latency_ms})
    print(f"results: {path.relative_to(ROOT)}")
    if not all(r["check"]["ok"] for r in results):
        print("a check did not hold; the figures are not valid", file=sys.stderr)
        return 1
    if opts.strict and not all((r["events_per_s"] or 0) >= GOAL
                               for r in results if r["backend"] == "postgresql"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
