"""Staff dashboards with a million gifts: the campaign dashboard and the overview of all
campaigns, beside the single raw SQL query that sums the campaign's ledger.

For each backend: a fresh database (migrated, ``flask seed-demo --gifts N``: N paid gifts over
the three live demo campaigns), the dashboards' snapshots built with ``flask staff rollup``
(what cron runs), a fundraiser made with ``flask users create`` and signed in
through the one-time link it prints; then the app under ``gunicorn -w 2`` and ``wrk`` on
127.0.0.1 with that session cookie, one connection at a time (``-c1``), so p50/p99 are the time
to answer one request, not queueing. The raw query is timed in-process with the database's own
driver, the same number of times. Figures go to ``bench/results/dashboard-<UTC time>.json``.

Goal (from the issue): the whole dashboard p50 <= 100 ms on PostgreSQL with 1,000,000 gifts.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from http.cookiejar import CookieJar
from pathlib import Path

from bench.campaign_page import WORKERS, WRK_SCRIPT
from bench.common import (
    BACKENDS,
    DEMO_NOW,
    DEMO_SLUG,
    ROOT,
    Server,
    base_env,
    check_backends,
    machine,
    run_checked,
    scratch_database,
    write_results,
)

SLUG = DEMO_SLUG
GOAL_MS = 100.0
RAW_SQL = ("SELECT COALESCE(SUM(CASE kind WHEN 'charge' THEN amount WHEN 'dispute_won' "
           "THEN amount ELSE -amount END), 0) FROM payment WHERE campaign_id = {id}")


def wrk(url: str, *, cookie: str, duration: int, connections: int = 1) -> dict:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("the benchmark only ever targets 127.0.0.1")
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "30s",
           "-H", f"Cookie: {cookie}", "-s", str(WRK_SCRIPT), url]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if result.returncode:
        raise RuntimeError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRK_JSON "))
    summary = json.loads(line.removeprefix("WRK_JSON "))
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["error_count"] = sum(summary["errors"].values())
    return summary


def sign_in(base_url: str, link: str) -> str:
    """Follow the one-time link like a browser (its page, then its form); returns the
    session cookie header."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    path = urllib.parse.urlsplit(link).path
    with opener.open(base_url + path, timeout=30) as response:
        page = response.read().decode()
    token = html.unescape(re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                                    page).group(1))
    body = urllib.parse.urlencode({"csrf_token": token}).encode()
    with opener.open(urllib.request.Request(base_url + path, data=body), timeout=30):
        pass
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    with opener.open(base_url + f"/staff/campaigns/{SLUG}", timeout=120) as response:
        if response.status != 200 or "Raised, net of refunds" not in response.read().decode():
            raise RuntimeError("the signed-in fundraiser does not see the dashboard")
    return cookie


def raw_query_times(url: str, runs: int) -> tuple[dict, int]:
    """p50/p99 of the raw ledger sum, with the driver the app uses; and the sum itself."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    else:
        import psycopg

        conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
    cur = conn.cursor()
    cur.execute("SELECT id FROM campaign WHERE slug = %s" if not url.startswith("sqlite")
                else "SELECT id FROM campaign WHERE slug = ?", (SLUG,))
    campaign_id = cur.fetchone()[0]
    sql = RAW_SQL.format(id=int(campaign_id))
    cur.execute(sql)
    total = cur.fetchone()[0]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        cur.execute(sql)
        cur.fetchone()
        times.append((time.perf_counter() - started) * 1e6)
    conn.close()
    times.sort()
    return {"p50_us": statistics.median(times),
            "p99_us": times[min(len(times) - 1, int(len(times) * 0.99))],
            "requests": runs}, int(total)


def run_backend(backend: str, opts, work: Path, stack: ExitStack) -> dict:
    print(f"\n[{backend}] preparing a database with {opts.gifts:,} gifts ...", flush=True)
    url, _ = scratch_database(backend, work, "dashboard", stack)
    env = base_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32),
                   MAIL_OUTBOX_DIR=str(work / f"outbox-{backend}"),
                   SIGNIN_LINK_MAX_AGE="36000")
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    started = time.perf_counter()
    run_checked([*flask, "db", "upgrade"], env, timeout=300)
    run_checked([*flask, "seed-demo", "--now", DEMO_NOW, "--gifts", str(opts.gifts)], env,
                timeout=7200)
    if backend == "postgresql":
        run_checked([sys.executable, "-c", "import psycopg,sys; c=psycopg.connect(sys.argv[1], "
                     "autocommit=True); c.execute('VACUUM ANALYZE')",
                     url.replace("postgresql+psycopg", "postgresql")], env, timeout=1800)
    # What cron does while campaigns run (see `flask staff rollup`): no page builds a snapshot.
    rolled = time.perf_counter()
    print(run_checked([*flask, "staff", "rollup"], env, timeout=3600).strip(), flush=True)
    rollup_seconds = time.perf_counter() - rolled
    out = run_checked([*flask, "users", "create", "--email", "bench@levantwire.example",
                       "--role", "fundraiser"], env, timeout=120)
    link = re.search(r"https?://\S+/account/link/\S+", out).group(0)
    print(f"  ready in {time.perf_counter() - started:.0f}s", flush=True)

    results = {"backend": backend, "gifts": opts.gifts, "rollup_seconds": rollup_seconds}
    with Server("app:create_app()", env, work / f"gunicorn-{backend}.log",
                workers=WORKERS) as server:
        cookie = sign_in(server.base_url, link)
        for key, path in (("dashboard", f"/staff/campaigns/{SLUG}"),
                          ("figures_json", f"/staff/campaigns/{SLUG}/figures.json"),
                          ("overview", "/staff/campaigns")):
            print(f"  {key}: warm-up, then {opts.duration}s ...", flush=True)
            wrk(server.base_url + path, cookie=cookie, duration=opts.warmup)
            s = wrk(server.base_url + path, cookie=cookie, duration=opts.duration)
            print(f"    p50 {s['p50_us'] / 1000:.1f} ms, p99 {s['p99_us'] / 1000:.1f} ms, "
                  f"{s['requests']} requests, {s['error_count']} errors", flush=True)
            results[key] = s
    raw, total = raw_query_times(url, max(50, results["dashboard"]["requests"]))
    results["raw_sql"] = raw
    results["raw_sum"] = total
    print(f"  raw SQL ledger sum: p50 {raw['p50_us'] / 1000:.1f} ms, "
          f"p99 {raw['p99_us'] / 1000:.1f} ms", flush=True)
    results["goal_met"] = results["dashboard"]["p50_us"] / 1000 <= GOAL_MS
    return results


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench dashboard",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--gifts", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per page")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    opts, _ = parser.parse_known_args(argv)
    check_backends(parser, opts)
    return opts


def main(argv=None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk).", file=sys.stderr)
        return 2
    info = machine()
    results = []
    work = Path(tempfile.mkdtemp(prefix="newsfund-dashboard-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        for backend in opts.backends:
            results.append(run_backend(backend, opts, work, stack))
    print(f"\nStaff dashboards, {opts.gifts:,} gifts, gunicorn -w 2, wrk -c1 "
          f"(one request at a time), {opts.duration}s each")
    header = f"{'target':<44}{'p50':>11}{'p99':>11}{'requests':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        for key, label in (("dashboard", "campaign dashboard (whole page)"),
                           ("figures_json", "dashboard figures (JSON refresh)"),
                           ("overview", "overview of all campaigns"),
                           ("raw_sql", "raw SQL: one sum over the campaign's ledger")):
            s = r[key]
            print(f"{r['backend'] + ': ' + label:<44}{s['p50_us'] / 1000:>9.1f}ms"
                  f"{s['p99_us'] / 1000:>9.1f}ms{s['requests']:>10}")
    for r in results:
        print(f"{r['backend']}: dashboard p50 goal <= {GOAL_MS:.0f} ms: "
              f"{'met' if r['goal_met'] else 'NOT met'}")
    path = write_results("dashboard", machine=info, settings=vars(opts), results=results)
    print(f"results: {path.relative_to(ROOT)}")
    if any(r[k]["error_count"] for r in results for k in ("dashboard", "figures_json",
                                                           "overview")):
        return 1
    return 1 if opts.strict and not all(r["goal_met"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
