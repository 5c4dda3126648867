"""Importing gift history (``flask finance import``) on PostgreSQL, against PostgreSQL's own
``COPY`` of the same file.

A throwaway PostgreSQL cluster; a source database migrated by the project's migrations, with the
demo and ``--gifts`` paid gifts (``bench.exports.populate``), exported with ``flask finance
export`` over the whole history; then, each in its own process, timed from start to exit:

- **ours**: ``flask --app app finance import FILE`` into an empty migrated database (process
  start-up included); its peak memory is the process's maximum resident set size;
- **COPY**: ``psql -c "\\copy import_copy FROM FILE WITH (FORMAT csv, HEADER)"`` into a table of
  the file's columns, all text: the floor for reading the same bytes into the same server.

Checks before the figures count: every row imported, none refused, and the target's
reconciliation (gross and net per currency) equal to the source's.

Goals (from the issue): within 3x of COPY, and flat memory (under 200 MB peak).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, base_env, bench_session, scratch_database, write_results
from bench.exports import measure, populate

GOAL_RATIO = 3.0
GOAL_MB = 200.0


def _figures(url: str, first: str, last: str):
    from app import create_app
    from app.extensions import db
    from app.finance.common import make_period
    from app.finance.reconciliation import reconcile
    from app.templating import org_zone

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        lines = reconcile(make_period(first, last, org_zone())).by_currency
        figures = {line.currency: (line.gross, line.net) for line in lines}
        db.session.remove()
        db.engine.dispose()
    return figures


def run(opts: argparse.Namespace, work: Path, stack: ExitStack) -> dict:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db
    from app.finance.exports import HEADER
    from app.templating import org_zone

    print(f"[postgresql] preparing {opts.gifts:,} gifts ...", flush=True)
    source, cluster = scratch_database("postgresql", work, "bench_import_source", stack)
    target = cluster.create_database("bench_import_target")
    secret = secrets.token_hex(16)
    for url in (source, target):
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret})
        with app.app_context():
            upgrade()
            if url == source:
                data = populate(opts.gifts)
                zone = org_zone()
                first = data["first"].astimezone(zone).date().isoformat()
                last = data["now"].astimezone(zone).date().isoformat()
            db.session.remove()
            db.engine.dispose()
    flask = str(Path(sys.executable).parent / "flask")
    exported = work / "gifts.csv"
    measure([flask, "--app", "app", "finance", "export", "--from", first, "--to", last, "-o",
             str(exported)], work / "export.log",
            base_env(DATABASE_URL=source, SECRET_KEY=secret))
    rows = sum(1 for _ in open(exported, "rb")) - 1
    print(f"  {rows:,} rows exported ({exported.stat().st_size / 1e6:.0f} MB)", flush=True)

    print("  ours: flask finance import ...", flush=True)
    ours = measure([flask, "--app", "app", "finance", "import", str(exported)],
                   work / "import.log", base_env(DATABASE_URL=target, SECRET_KEY=secret,
                                                 MAIL_OUTBOX_DIR=str(work / "outbox")))
    log = (work / "import.log").read_text()
    print(f"  ours: {ours['seconds']:.1f}s ({ours['cpu_seconds']:.1f} CPU s), peak "
          f"{ours['max_rss_kib'] / 1024:.0f} MB", flush=True)

    psql = str(cluster.bindir / "psql")
    conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", cluster.user, "-d",
            "bench_import_target", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    columns = ", ".join(f'"{name}" text' for name in HEADER)
    measure([psql, *conn, f"CREATE TABLE import_copy ({columns})"], work / "psql.log",
            base_env())
    copy = measure([psql, *conn, f"\\copy import_copy FROM '{exported}' WITH (FORMAT csv, "
                    "HEADER)"], work / "psql.log", base_env())
    print(f"  COPY: {copy['seconds']:.1f}s", flush=True)

    problems = []
    if f"imported: {rows:,} created, 0 updated, 0 unchanged, 0 refused" not in log:
        problems.append(f"the import did not create every row: {log[-500:]}")
    before, after = _figures(source, first, last), _figures(target, first, last)
    if before != after:
        problems.append(f"reconciliation differs: {before} != {after}")
    return against_copy(rows, exported, [ours], copy, problems)


def against_copy(rows: int, file: Path, runs: list[dict], copy: dict, problems: list[str],
                 **extra) -> dict:
    """The figures of an import (its first run of ``runs``; the peak memory of all) beside
    PostgreSQL's COPY of the same file, and the goals' verdict."""
    ours = runs[0]
    ratio = ours["seconds"] / copy["seconds"]
    peak_mb = max(r["max_rss_kib"] for r in runs) / 1024
    return {"backend": "postgresql", "rows": rows, "bytes": file.stat().st_size,
            "ours_seconds": ours["seconds"], "ours_cpu_seconds": ours["cpu_seconds"],
            "ours_rows_per_second": rows / ours["seconds"], "ours_peak_mb": peak_mb,
            "copy_seconds": copy["seconds"], "copy_rows_per_second": rows / copy["seconds"],
            "ratio": ratio, "problems": problems,
            "goal_met": ratio <= GOAL_RATIO and peak_mb < GOAL_MB, **extra}


def report(name: str, opts, info: dict, result: dict) -> int:
    """Write the results, name each failed check; the exit status (1: a check failed, or a
    goal was missed with ``--strict``)."""
    path = write_results(name, settings=vars(opts), machine=info, results=[result])
    print(f"results: {path.relative_to(ROOT)}")
    for problem in result["problems"]:
        print(f"CHECK FAILED: {problem}", file=sys.stderr)
    return 1 if result["problems"] or (opts.strict and not result["goal_met"]) else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench import",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--gifts", type=int, default=1_000_000,
                        help="gifts added to the demo data (default 1000000)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    opts, _ = parser.parse_known_args(argv)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    with bench_session("imports") as (work, stack, info):
        result = run(opts, work, stack)
    r = result
    print(f"\nGift import from CSV on PostgreSQL, {r['rows']:,} rows; goals: within "
          f"{GOAL_RATIO:.0f}x of COPY, peak < {GOAL_MB:.0f} MB")
    print(f"  ours {r['ours_seconds']:.1f}s ({r['ours_rows_per_second']:,.0f} rows/s, peak "
          f"{r['ours_peak_mb']:.0f} MB); COPY {r['copy_seconds']:.1f}s "
          f"({r['copy_rows_per_second']:,.0f} rows/s); ratio {r['ratio']:.1f}: goal "
          f"{'met' if r['goal_met'] else 'NOT met'} "
          f"(whole run {time.perf_counter() - started:.0f}s)")
    return report("imports", opts, info, result)


if __name__ == "__main__":
    sys.exit(main())
