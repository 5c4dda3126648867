"""Exporting a million gifts as CSV, against the database's own CSV dump of the same rows.

For each backend (a SQLite file in a temporary folder, then a throwaway PostgreSQL cluster): a
fresh database migrated by the project's own Alembic migrations, the demo campaigns, and
``--gifts`` paid gifts with their ledger rows added by ``app.demo.generate_gifts`` (what
``flask seed-demo --gifts N`` runs). Then, each in its own process, timed from start to exit:

- **ours**: ``flask --app app finance export --from D --to D -o FILE``, the command finance
  runs (process start-up included), which reads through a server-side cursor 2,000 rows at a
  time and writes CSV as it goes; its peak memory is the process's maximum resident set size;
- **db, same query**: the database's own CSV writer on the very query the export runs (compiled
  with its values): ``sqlite3 -csv`` (``.mode csv``), or ``psql`` running
  ``COPY (query) TO STDOUT WITH (FORMAT csv, HEADER)``, to a file;
- **db, gift table**: the same tool dumping the bare ``gift`` table, the floor for any export.

Checks before the figures count: the export has one row per gift plus the header, and its
``gross_minor`` and ``net_minor`` columns add up to the reconciliation of the same period.

Goals (from the issue): ours within 3x of the database's own dump of the same rows, and under
200 MB peak memory. ``--xlsx`` also times the XLSX export of the same rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    BACKENDS,
    ROOT,
    base_env,
    check_backends,
    run_backends,
    scratch_database,
    write_results,
)

GOAL_RATIO = 3.0
GOAL_MB = 200.0

# Runs a command as this process's only child and prints its peak RSS (KiB) and wall time.
_MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    code = subprocess.run(sys.argv[2:], stdout=out).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "seconds": time.perf_counter() - started,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "max_rss_kib": usage.ru_maxrss}))
"""


def measure(cmd: list[str], stdout_path: Path, env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(stdout_path), *cmd], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=3600)
    if result.returncode:
        raise RuntimeError(f"measuring {cmd[0]} failed:\n{result.stderr}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if figures["code"]:
        raise RuntimeError(f"{' '.join(cmd)} exited {figures['code']}:\n{result.stderr}")
    return figures


def populate(n: int) -> dict:
    """The demo campaigns and ``n`` more paid gifts, committed in chunks."""
    from flask import current_app
    from sqlalchemy import func, select, text

    from app import jobs
    from app.campaigns.models import Campaign
    from app.db import utcnow
    from app.demo import demo_origin, generate_gifts, seed_demo
    from app.extensions import db
    from app.giving.models import Gift

    now = utcnow()
    zone, founded = demo_origin(current_app.config)
    seed_demo(now, zone=zone, founded=founded)
    jobs.commit()
    campaigns = [c for c in db.session.scalars(select(Campaign)) if c.is_live(now)]
    done = 0
    while done < n:
        chunk = min(100_000, n - done)
        generate_gifts(campaigns, chunk, now=now)
        jobs.commit()
        done += chunk
        print(f"    {done:,}/{n:,} gifts", flush=True)
    if db.session.get_bind().dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    first = db.session.scalar(select(func.min(Gift.paid_at)))
    return {"gifts": db.session.scalar(select(func.count()).select_from(Gift)), "first": first,
            "now": now}


def run_backend(backend: str, opts: argparse.Namespace, work: Path, stack: ExitStack) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy.dialects import postgresql, sqlite

    from app import create_app
    from app.extensions import db
    from app.finance.common import make_period
    from app.finance.exports import export_filter, export_query
    from app.finance.reconciliation import reconcile
    from app.templating import org_zone

    print(f"\n[{backend}] preparing {opts.gifts:,} gifts ...", flush=True)
    url, cluster = scratch_database(backend, work, "bench_exports", stack)
    db_path = url.removeprefix("sqlite:///")
    env = base_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(16),
                   MAIL_OUTBOX_DIR=str(work / "outbox"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": env["SECRET_KEY"]})
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        data = populate(opts.gifts)
        print(f"  data ready in {time.perf_counter() - started:.1f}s: {data['gifts']:,} gifts",
              flush=True)
        zone = org_zone()
        first = data["first"].astimezone(zone).date().isoformat()
        last = data["now"].astimezone(zone).date().isoformat()
        period = make_period(first, last, zone)
        figures = reconcile(period).by_currency
        query = export_query(export_filter(period))
        dialect = sqlite.dialect() if backend == "sqlite" else postgresql.dialect()
        sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        db.session.remove()
        db.engine.dispose()

    flask = str(Path(sys.executable).parent / "flask")
    out = work / f"ours-{backend}.csv"
    print(f"  ours: flask finance export --from {first} --to {last} ...", flush=True)
    ours = measure([flask, "--app", "app", "finance", "export", "--from", first, "--to", last,
                    "-o", str(out)], work / "ours.log", env)
    rows, sums = check_csv(out)
    ours_bytes = out.stat().st_size
    out.unlink()
    problems = []
    if rows != data["gifts"]:
        problems.append(f"the export has {rows:,} rows for {data['gifts']:,} gifts")
    for line in figures:
        got = sums.get(line.currency, (0, 0))
        if got != (line.gross, line.net):
            problems.append(f"{line.currency}: export gross/net {got} != reconciliation "
                            f"{(line.gross, line.net)}")
    print(f"  ours: {rows:,} rows in {ours['seconds']:.1f}s ({ours['cpu_seconds']:.1f} CPU s), "
          f"peak {ours['max_rss_kib'] / 1024:.0f} MB", flush=True)

    if backend == "sqlite":
        sqlite3 = shutil.which("sqlite3")
        if not sqlite3:
            raise RuntimeError("sqlite3 not found: apt-get install sqlite3")
        same = measure([sqlite3, "-csv", "-header", str(db_path), sql], work / "db.csv", env)
        table = measure([sqlite3, "-csv", "-header", str(db_path), "SELECT * FROM gift"],
                        work / "db.csv", env)
        tool = "sqlite3 -csv"
    else:
        psql = str(cluster.bindir / "psql")
        conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", cluster.user, "-d",
                "bench_exports", "-X", "-q", "-c"]
        same = measure([psql, *conn, f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)"],
                       work / "db.csv", env)
        table = measure([psql, *conn, "COPY gift TO STDOUT WITH (FORMAT csv, HEADER)"],
                        work / "db.csv", env)
        tool = "psql COPY"
    db_rows = sum(1 for _ in open(work / "db.csv", "rb")) - 1
    (work / "db.csv").unlink()
    if db_rows != data["gifts"]:
        problems.append(f"the database's dump has {db_rows:,} rows")
    print(f"  {tool}, same query: {same['seconds']:.1f}s ({same['cpu_seconds']:.1f} CPU s; the "
          f"server's own CPU not counted for PostgreSQL); gift table: {table['seconds']:.1f}s",
          flush=True)

    xlsx = None
    if opts.xlsx:
        out = work / f"ours-{backend}.xlsx"
        xlsx = measure([flask, "--app", "app", "finance", "export", "--from", first, "--to",
                        last, "-o", str(out)], work / "ours.log", env)
        xlsx["bytes"] = out.stat().st_size
        out.unlink()
        print(f"  ours, XLSX: {xlsx['seconds']:.1f}s, peak {xlsx['max_rss_kib'] / 1024:.0f} MB",
              flush=True)

    ratio = ours["seconds"] / same["seconds"]
    peak_mb = ours["max_rss_kib"] / 1024
    return {
        "backend": backend, "gifts": data["gifts"], "rows": rows, "bytes": ours_bytes,
        "ours_seconds": ours["seconds"], "ours_cpu_seconds": ours["cpu_seconds"],
        "ours_rows_per_second": rows / ours["seconds"],
        "db_same_query_cpu_seconds": same["cpu_seconds"],
        "ours_peak_mb": peak_mb, "db_tool": tool, "db_same_query_seconds": same["seconds"],
        "db_same_query_rows_per_second": rows / same["seconds"],
        "db_gift_table_seconds": table["seconds"], "ratio": ratio,
        "xlsx": xlsx, "problems": problems,
        "goal_met": ratio <= GOAL_RATIO and peak_mb < GOAL_MB,
    }


def check_csv(path: Path) -> tuple[int, dict[str, tuple[int, int]]]:
    """Rows of an export file, and its gross and net (minor units) per currency."""
    from app.finance.exports import HEADER

    sums: dict[str, list[int]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        if tuple(next(reader)) != HEADER:
            raise RuntimeError("the export's header is not the documented one")
        cur, gross, net = (HEADER.index(n) for n in ("currency", "gross_minor", "net_minor"))
        rows = 0
        for row in reader:
            rows += 1
            bucket = sums.setdefault(row[cur], [0, 0])
            bucket[0] += int(row[gross])
            bucket[1] += int(row[net])
    return rows, {k: tuple(v) for k, v in sums.items()}




def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench exports",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated, of: sqlite, postgresql (default: both)")
    parser.add_argument("--gifts", type=int, default=1_000_000,
                        help="gifts added to the demo data (default 1000000)")
    parser.add_argument("--xlsx", action="store_true", help="also time the XLSX export")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    # The other benchmarks' options are accepted and ignored.
    opts, _ = parser.parse_known_args(argv)
    check_backends(parser, opts)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    results, info = run_backends("exports", opts, run_backend)

    print(f"\nGift export to CSV, {opts.gifts:,} added gifts; goals: within {GOAL_RATIO:.0f}x of "
          f"the database's own dump of the same rows, peak < {GOAL_MB:.0f} MB")
    print(f"{'backend':<11}{'rows':>11}{'ours s':>8}{'CPU s':>7}{'rows/s':>10}{'peak MB':>9}"
          f"{'db same s':>11}{'db rows/s':>11}{'db table s':>11}{'ratio':>7}  goal")
    for r in results:
        print(f"{r['backend']:<11}{r['rows']:>11,}{r['ours_seconds']:>8.1f}"
              f"{r['ours_cpu_seconds']:>7.1f}"
              f"{r['ours_rows_per_second']:>10,.0f}{r['ours_peak_mb']:>9.0f}"
              f"{r['db_same_query_seconds']:>11.1f}{r['db_same_query_rows_per_second']:>11,.0f}"
              f"{r['db_gift_table_seconds']:>11.1f}{r['ratio']:>7.2f}  "
              f"{'met' if r['goal_met'] else 'NOT met'}")
        if r["xlsx"]:
            print(f"{'':<11}XLSX: {r['xlsx']['seconds']:.1f}s "
                  f"({r['rows'] / r['xlsx']['seconds']:,.0f} rows/s), peak "
                  f"{r['xlsx']['max_rss_kib'] / 1024:.0f} MB")
    path = write_results("exports", settings=vars(opts), machine=info, results=results)
    print(f"results: {path.relative_to(ROOT)}")
    for r in results:
        for problem in r["problems"]:
            print(f"CHECK FAILED [{r['backend']}]: {problem}", file=sys.stderr)
    if any(r["problems"] for r in results):
        return 1
    if opts.strict and not all(r["goal_met"] for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
