"""Importing supporters (``flask supporters import``) on PostgreSQL, against PostgreSQL's own
``COPY`` of the same file.

A throwaway PostgreSQL cluster and an empty database migrated by the project's migrations; a
Ghost member export of ``--supporters`` made-up members (two in three subscribed to emails, one
in fifty comped, labels on one in four; no Stripe ids: Stripe is not part of what is timed),
then, each in its own process, timed from start to exit:

- **ours**: ``flask --app app supporters import FILE`` (process start-up included); its peak
  memory is the process's maximum resident set size; then the same file again (every row
  unchanged);
- **COPY**: ``psql -c "\\copy import_copy FROM FILE WITH (FORMAT csv, HEADER)"`` into a table of
  the file's columns, all text: the floor for reading the same bytes into the same server;
- **set-based SQL** (:data:`FLOOR_SQL`): the file COPYed into a temporary table, then the
  supporters and the subscribers the import writes, one ``INSERT ... SELECT`` each, into a copy
  of the same empty migrated database: no check, no lookup (``bench.imports``' floor).

Checks before the figures count: every row created, then every row unchanged, and the
set-based SQL's tables holding as many rows as ours.

Goals (from issue 14): within 3x of COPY, and flat memory (under 200 MB peak).
``python -m bench.supporters_import [--supporters N] [--strict]``.
"""

from __future__ import annotations

import argparse
import csv
import secrets
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import base_env, bench_session, scratch_database
from bench.exports import measure
from bench.imports import (
    GOAL_MB,
    GOAL_RATIO,
    against_copy,
    floor_line,
    report,
    same_rows,
    set_based,
)

HEADER = ["id", "email", "name", "note", "subscribed_to_emails", "complimentary_plan",
          "stripe_customer_id", "created_at", "deleted_at", "labels", "tiers"]
#: The supporters and subscribers ``flask supporters import`` writes for :func:`write_members`'
#: file, written by PostgreSQL alone (``{file}``: its path).
FLOOR_SQL = """\\set ON_ERROR_STOP 1
CREATE TEMP TABLE stage ({typed}, line bigint GENERATED ALWAYS AS IDENTITY);
\\copy stage ({columns}) FROM '{file}' WITH (FORMAT csv, HEADER)
BEGIN;
INSERT INTO supporter (email, name, note, labels, created_at, comped_until)
SELECT lower(email), name, nullif(note, ''), nullif(labels, ''), created_at::timestamptz,
       CASE WHEN complimentary_plan = 'true' THEN '9999-12-31T00:00:00Z'::timestamptz END
FROM stage ORDER BY line;
INSERT INTO news_subscriber (email, supporter_id, status, consent_version, consented_at,
                             consent_source, created_at, consent_file, consent_line)
SELECT p.email, p.id, 'pending', 'imported', s.created_at::timestamptz, 'ghost', now(),
       'members.csv', s.line + 1
FROM stage s JOIN supporter p ON p.email = lower(s.email)
WHERE s.subscribed_to_emails = 'true'
ORDER BY s.line;
COMMIT;
"""


def write_members(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADER)
        for i in range(n):
            writer.writerow([
                f"{i:024x}", f"reader{i}@example.org", f"Reader {i}",
                "met at the gala" if i % 10 == 0 else "", "true" if i % 3 else "false",
                "true" if i % 50 == 0 else "false", "",
                f"20{18 + i % 7}-0{1 + i % 9}-1{i % 10}T10:11:12.000Z", "",
                "donor, newsletter" if i % 4 == 0 else "", ""])


def run(opts: argparse.Namespace, work: Path, stack: ExitStack) -> dict:
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    print(f"[postgresql] {opts.supporters:,} supporters ...", flush=True)
    target, cluster = scratch_database("postgresql", work, "bench_supporters", stack)
    secret = secrets.token_hex(16)
    app = create_app({"SQLALCHEMY_DATABASE_URI": target, "SECRET_KEY": secret})
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()
    floor_url = cluster.create_database("bench_supporters_floor", template="bench_supporters")
    members = work / "members.csv"
    write_members(members, opts.supporters)
    flask = str(Path(sys.executable).parent / "flask")
    env = base_env(DATABASE_URL=target, SECRET_KEY=secret, MAIL_OUTBOX_DIR=str(work / "outbox"))

    runs = []
    for label in ("first", "rerun"):
        print(f"  ours ({label}): flask supporters import ...", flush=True)
        figures = measure([flask, "--app", "app", "supporters", "import", str(members)],
                          work / f"{label}.log", env)
        print(f"  ours ({label}): {figures['seconds']:.1f}s ({figures['cpu_seconds']:.1f} CPU "
              f"s), peak {figures['max_rss_kib'] / 1024:.0f} MB", flush=True)
        runs.append(figures)

    psql = str(cluster.bindir / "psql")
    conn = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", cluster.user, "-d",
            "bench_supporters", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    columns = ", ".join(f'"{name}" text' for name in HEADER)
    measure([psql, *conn, f"CREATE TABLE import_copy ({columns})"], work / "psql.log",
            base_env())
    copy = measure([psql, *conn, f"\\copy import_copy FROM '{members}' WITH (FORMAT csv, "
                    "HEADER)"], work / "psql.log", base_env())
    print(f"  COPY: {copy['seconds']:.1f}s", flush=True)
    floor = set_based(cluster, "bench_supporters_floor", FLOOR_SQL.format(
        typed=", ".join(f'"{name}" text' for name in HEADER),
        columns=", ".join(f'"{name}"' for name in HEADER), file=members), work)

    n = opts.supporters
    problems = []
    for label, expected in (("first", f"imported: {n:,} created, 0 updated, 0 unchanged, "
                                      "0 refused"),
                            ("rerun", f"imported: 0 created, 0 updated, {n:,} unchanged, "
                                      "0 refused")):
        log = (work / f"{label}.log").read_text()
        if expected not in log:
            problems.append(f"{label}: expected {expected!r}: {log[-500:]}")
    problems += same_rows(target, floor_url, ("supporter", "news_subscriber"))
    return against_copy(n, members, runs, copy, problems, floor=floor,
                        rerun_seconds=runs[1]["seconds"])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.supporters_import",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--supporters", type=int, default=100_000,
                        help="members in the Ghost export (default 100000)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    opts, _ = parser.parse_known_args(argv)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    with bench_session("supporters") as (work, stack, info):
        result = run(opts, work, stack)
    r = result
    print(f"\nSupporters import (a Ghost export) on PostgreSQL, {r['rows']:,} rows; goals: "
          f"within {GOAL_RATIO:.0f}x of COPY, peak < {GOAL_MB:.0f} MB")
    print(f"  ours {r['ours_seconds']:.1f}s ({r['ours_rows_per_second']:,.0f} rows/s, peak "
          f"{r['ours_peak_mb']:.0f} MB; rerun {r['rerun_seconds']:.1f}s); COPY "
          f"{r['copy_seconds']:.1f}s ({r['copy_rows_per_second']:,.0f} rows/s); ratio "
          f"{r['ratio']:.1f}: goal {'met' if r['goal_met'] else 'NOT met'} "
          f"(whole run {time.perf_counter() - started:.0f}s)")
    print(floor_line(r))
    return report("supporters_import", opts, info, result)


if __name__ == "__main__":
    sys.exit(main())
