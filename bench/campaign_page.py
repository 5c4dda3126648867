"""The campaign page under gunicorn, against a bare Flask app, on SQLite and PostgreSQL.

For each backend: a fresh database, migrated and seeded with the project's own CLI, topped up so
that the ``twenty-years`` campaign has (at least) ``--gifts`` paid gifts; then the app under
``gunicorn -w 2`` and, right before it, the bare app (``bench/bare_app.py``) under the same
server settings, each warmed up and then loaded by the same ``wrk`` command on 127.0.0.1.
Prints requests per second, p50 and p99 latency, and the ratio campaign/bare per backend, plus
the app's own ``/healthz`` as a reference (what Flask and the app's extensions cost before any
page work); writes the same figures as JSON to ``bench/results/``.

The app runs on its defaults, so a reader's campaign page is checked against the ledger at most
once a second per process (``CAMPAIGN_PAGE_RECHECK_SECONDS``, app/campaigns/pages.py);
``--recheck 0`` measures the check on every request instead.

Goal (from the issue): the campaign page at >= 50% of the bare app's throughput.
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
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    BACKENDS,
    DEMO_NOW,
    DEMO_SLUG,
    ROOT,
    Server,
    base_env,
    check_backends,
    load_text,
    measured_machine,
    run_checked,
    scratch_database,
    write_results,
)

BENCH = ROOT / "bench"
WRK_SCRIPT = BENCH / "wrk_report.lua"

SLUG = DEMO_SLUG
CAMPAIGN_PATH = f"/campaigns/{SLUG}"
WORKERS = 2
GOAL_RATIO = 0.5


# --- processes -------------------------------------------------------------------------------



# --- load ------------------------------------------------------------------------------------

def wrk(url: str, *, threads: int, connections: int, duration: int,
        script: Path = WRK_SCRIPT) -> dict:
    """One wrk run; returns its summary (latencies in microseconds) with requests per second.
    ``script`` must print the summary as WRK_REPORT does (``bench/wrk_report.lua``)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("the benchmark only ever targets 127.0.0.1")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
           "-s", str(script), url]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if result.returncode:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    for line in result.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            summary = json.loads(line.removeprefix("WRK_JSON "))
            break
    else:
        raise RuntimeError(f"no summary in wrk's output:\n{result.stdout}\n{result.stderr}")
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["error_count"] = sum(summary["errors"].values())
    return summary


def measure(label: str, url: str, opts: argparse.Namespace,
            script: Path = WRK_SCRIPT) -> dict:
    print(f"  {label}: warm-up {opts.warmup}s, then {opts.duration}s ...", flush=True)
    if opts.warmup:
        wrk(url, threads=opts.threads, connections=opts.connections, duration=opts.warmup,
            script=script)
    summary = wrk(url, threads=opts.threads, connections=opts.connections,
                  duration=opts.duration, script=script)
    summary["target"] = label
    summary["url"] = url
    print(f"    {summary['rps']:.1f} req/s, p50 {summary['p50_us'] / 1000:.1f} ms, "
          f"p99 {summary['p99_us'] / 1000:.1f} ms"
          + (f", {summary['error_count']} ERRORS {summary['errors']}"
             if summary["error_count"] else ""), flush=True)
    return summary


# --- data ------------------------------------------------------------------------------------

TOP_UP = """
import random, sys
from sqlalchemy import func, select, text
from app import create_app, jobs
from app.campaigns.models import Campaign
from app.db import utcnow
from app.demo import generate_gifts
from app.extensions import db
from app.giving.models import Gift, GiftStatus

slug, wanted = sys.argv[1], int(sys.argv[2])
app = create_app()
with app.app_context():
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    def paid():
        return db.session.scalar(select(func.count(Gift.id)).where(
            Gift.campaign_id == campaign.id, Gift.status == GiftStatus.PAID))
    missing = wanted - paid()
    if missing > 0:
        generate_gifts([campaign], missing, now=utcnow(), rng=random.Random(2006))
        jobs.commit()
    if db.engine.dialect.name == "postgresql":
        # What autovacuum would have done by now on a running server: planner statistics and
        # the visibility map (without it, no index-only scans right after a bulk load).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    print("PAID_GIFTS", paid())
"""


def prepare_database(env: dict[str, str], gifts: int) -> int:
    """Migrate, seed the demo and top the campaign up; returns its verified paid-gift count."""
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    run_checked([*flask, "db", "upgrade"], env, timeout=300)
    run_checked([*flask, "seed-demo", "--now", DEMO_NOW], env, timeout=300)
    out = run_checked([sys.executable, "-c", TOP_UP, SLUG, str(gifts)], env, timeout=600)
    count = int(next(line.split()[1] for line in out.splitlines()
                     if line.startswith("PAID_GIFTS ")))
    if count < gifts:
        raise RuntimeError(f"{SLUG} has {count} paid gifts, fewer than {gifts}")
    return count


def check_page(url: str, count: int) -> None:
    """One request before the load: a 200 that shows the campaign and its gift count."""
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    if f"{count:,}" not in body:
        print(f"  warning: {url} does not show the gift count {count:,}", flush=True)


# --- the benchmark ---------------------------------------------------------------------------

def run_backend(backend: str, bare: Server, opts: argparse.Namespace, work: Path,
                stack: ExitStack) -> dict:
    print(f"\n[{backend}] preparing the database ...", flush=True)
    url, _ = scratch_database(backend, work, "bench", stack)
    recheck = {} if opts.recheck is None else {"CAMPAIGN_PAGE_RECHECK_SECONDS": opts.recheck}
    env = base_env(**recheck, DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32),
                   MAIL_OUTBOX_DIR=str(work / f"outbox-{backend}"))
    started = time.perf_counter()
    count = prepare_database(env, opts.gifts)
    print(f"  {SLUG}: {count:,} paid gifts ({time.perf_counter() - started:.1f}s)", flush=True)

    bare_result = measure("bare app", bare.base_url + "/", opts)
    with Server("app:create_app()", env, work / f"gunicorn-{backend}.log",
                workers=WORKERS) as app_server:
        page = app_server.base_url + CAMPAIGN_PATH
        check_page(page, count)
        campaign_result = measure(f"campaign page ({backend})", page, opts)
        # For reading the ratio: the app's cheapest route (Flask, its extensions, one SELECT 1).
        floor_result = measure(f"app /healthz ({backend})", app_server.base_url + "/healthz",
                               opts) if opts.floor else None
    ratio = campaign_result["rps"] / bare_result["rps"] if bare_result["rps"] else 0.0
    return {"backend": backend, "gifts": count, "bare": bare_result,
            "campaign": campaign_result, "healthz": floor_result, "ratio": ratio,
            "goal_met": ratio >= GOAL_RATIO}






def report(results: list[dict], opts: argparse.Namespace, info: dict) -> None:
    def ms(us: float) -> str:
        return f"{us / 1000:.1f} ms"

    print(f"\nCampaign page vs bare Flask app: gunicorn -w {WORKERS}, "
          f"wrk -t{opts.threads} -c{opts.connections} -d{opts.duration}s "
          f"(after {opts.warmup}s warm-up), {info.get('cpus_usable', info['cpus'])} CPU(s) "
          "shared by wrk and the servers")
    print(f"load average before {load_text(info['loadavg_before'])}, "
          f"after {load_text(info['loadavg_after'])}")
    header = f"{'target':<46}{'req/s':>10}{'p50':>11}{'p99':>11}{'errors':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        for key, label in (("bare", f"bare Flask app (paired with {r['backend']})"),
                           ("campaign", f"campaign page, {r['backend']} ({r['gifts']:,} gifts)"),
                           ("healthz", f"  reference: app /healthz, {r['backend']}")):
            s = r[key]
            if s is None:
                continue
            print(f"{label:<46}{s['rps']:>10.1f}{ms(s['p50_us']):>11}{ms(s['p99_us']):>11}"
                  f"{s['error_count']:>8}")
    print()
    for r in results:
        verdict = "goal met" if r["goal_met"] else "goal NOT met"
        print(f"{r['backend']:<11} campaign/bare = {r['ratio']:.1%}  "
              f"(goal >= {GOAL_RATIO:.0%}: {verdict})")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated, of: sqlite, postgresql (default: both)")
    parser.add_argument("--gifts", type=int, default=10_000,
                        help="paid gifts in the campaign (default 10000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up, discarded")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--recheck", default=None, metavar="SECONDS",
                        help="CAMPAIGN_PAGE_RECHECK_SECONDS for the app (default: the app's)")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the reference measurement of the app's /healthz")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a backend misses the 50%% goal")
    opts = parser.parse_args(argv)
    check_backends(parser, opts)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: `make bench` installs it (as root), or "
              "`apt-get install wrk`.", file=sys.stderr)
        return 2
    info = measured_machine()
    results: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="newsfund-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        bare = Server("bench.bare_app:app", base_env(), work / "gunicorn-bare.log",
                      workers=WORKERS)
        stack.callback(bare.stop)
        bare.start()
        for backend in opts.backends:
            results.append(run_backend(backend, bare, opts, work, stack))
    info["loadavg_after"] = os.getloadavg()

    report(results, opts, info)
    path = write_results(
        "campaign_page", goal_ratio=GOAL_RATIO,
        settings={"workers": WORKERS, "threads": opts.threads, "connections": opts.connections,
                  "duration_s": opts.duration, "warmup_s": opts.warmup, "gifts": opts.gifts,
                  "path": CAMPAIGN_PATH, "recheck_seconds": opts.recheck},
        machine=info, results=results)
    print(f"\nresults: {path.relative_to(ROOT)}")

    if any(r[k]["error_count"] for r in results for k in ("bare", "campaign", "healthz")
           if r[k]):
        print("some requests failed; the figures are not valid", file=sys.stderr)
        return 1
    if opts.strict and not all(r["goal_met"] for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
