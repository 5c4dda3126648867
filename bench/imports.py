"""Importing gift history (``flask finance import``) on PostgreSQL, against PostgreSQL's own
``COPY`` of the same file.

A throwaway PostgreSQL cluster; a source database migrated by the project's migrations, with the
demo and ``--gifts`` paid gifts (``bench.exports.populate``), exported with ``flask finance
export`` over the whole history; then, each in its own process, timed from start to exit:

- **ours**: ``flask --app app finance import FILE`` into an empty migrated database (process
  start-up included); its peak memory is the process's maximum resident set size;
- **COPY**: ``psql -c "\\copy import_copy FROM FILE WITH (FORMAT csv, HEADER)"`` into a table of
  the file's columns, all text: the floor for reading the same bytes into the same server;
- **set-based SQL** (:data:`FLOOR_SQL`, ``psql -f``): the file COPYed into a temporary table,
  then the rows the import writes (supporters, campaigns, gifts, ledger rows, receipts) written
  with one ``INSERT ... SELECT`` each into a copy of the same empty migrated database: no
  check, no lookup of what is here, so the floor for writing the same rows into this schema
  (its indexes, unique keys and foreign keys are what cost; a bare table of text has none).

Checks before the figures count: every row imported, none refused, the target's
reconciliation (gross and net per currency) equal to the source's, and the set-based SQL's
tables holding as many rows as ours.

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

#: The rows ``flask finance import`` writes for the export of ``bench.exports.populate``'s
#: gifts, written by PostgreSQL alone (``{columns}``: the export's, ``{file}``: its path).
#: Amounts are read from the ``*_minor`` columns, the gift's own amount in cents (the
#: benchmark's gifts are in dollars), receipt numbers in this platform's form (2026-000042).
FLOOR_SQL = """\\set ON_ERROR_STOP 1
CREATE TEMP TABLE stage ({typed}, line bigint GENERATED ALWAYS AS IDENTITY);
\\copy stage ({columns}) FROM '{file}' WITH (FORMAT csv, HEADER)
BEGIN;
INSERT INTO campaign (slug, title, kind, summary, appeal_markdown, signatory_name,
                      signatory_title, thank_you_message, starts_at, ends_at, goal_amount,
                      currency, default_frequency, published, created_at, fund_code,
                      imported_at)
SELECT campaign, coalesce(nullif(min(campaign_title), ''), campaign), 'general', '', '', '',
       '', '', min(paid_at_utc::timestamptz), now(), 1, min(currency), 'one_time', false,
       now(), nullif(min(fund_code), ''), now()
FROM stage GROUP BY campaign;
INSERT INTO supporter (email, name, created_at)
SELECT DISTINCT ON (lower(donor_email)) lower(donor_email), donor_name,
       paid_at_utc::timestamptz
FROM stage ORDER BY lower(donor_email), line;
INSERT INTO gift (public_id, campaign_id, supporter_id, frequency, amount, fee_covered,
                  currency, status, donor_name, anonymous, dedication, dedication_name,
                  utm_source, utm_medium, utm_campaign, provider, created_at, paid_at,
                  goods_value)
SELECT s.gift_reference, c.id, p.id, s.frequency, round(s.gift_amount::numeric * 100),
       round(coalesce(nullif(s.fee_covered, ''), '0')::numeric * 100), s.currency, s.status,
       coalesce(nullif(s.donor_name, ''), p.email), s.anonymous::boolean,
       nullif(s.dedication, ''), nullif(s.dedication_name, ''), nullif(s.utm_source, ''),
       nullif(s.utm_medium, ''), nullif(s.utm_campaign, ''), s.method,
       s.paid_at_utc::timestamptz, s.paid_at_utc::timestamptz,
       round(nullif(s.goods_value, '')::numeric * 100)
FROM stage s JOIN campaign c ON c.slug = s.campaign
JOIN supporter p ON p.email = lower(s.donor_email)
ORDER BY s.line;
INSERT INTO payment (gift_id, campaign_id, kind, amount, currency, provider, provider_id,
                     charge_id, payment_intent_id, fee, net, occurred_at, created_at)
SELECT g.id, g.campaign_id, l.kind, l.amount, g.currency, g.provider,
       s.provider_reference || l.suffix,
       CASE WHEN s.provider_reference ~ '^(ch|py)_' THEN s.provider_reference END,
       CASE WHEN s.provider_reference ~ '^pi_' THEN s.provider_reference END,
       l.fee, l.amount - l.fee, g.paid_at, now()
FROM stage s JOIN gift g ON g.public_id = s.gift_reference
CROSS JOIN LATERAL (VALUES
    ('charge', s.gross_minor::int, '',
     CASE WHEN s.provider_fee_unknown <> '1' THEN s.provider_fee_minor::int END),
    ('refund', s.refunded_minor::int, ':import-refund', NULL),
    ('dispute', CASE WHEN s.disputed_minor::int > 0 THEN s.disputed_minor::int
                     WHEN s.dispute_fee_minor::int > 0 THEN s.gross_minor::int END,
     ':import-dispute', nullif(s.dispute_fee_minor::int, 0)),
    ('dispute_won', CASE WHEN s.disputed_minor::int = 0 AND s.dispute_fee_minor::int > 0
                         THEN s.gross_minor::int END, ':import-dispute-won', NULL)
) AS l (kind, amount, suffix, fee)
WHERE l.amount > 0
ORDER BY g.id;
INSERT INTO receipt (gift_id, year, sequence, number, amount, currency, issued_at, status,
                     issued_elsewhere)
SELECT g.id, split_part(s.receipt_number, '-', 1)::int,
       split_part(s.receipt_number, '-', 2)::int, s.receipt_number,
       s.gross_minor::int - s.refunded_minor::int - s.disputed_minor::int, g.currency,
       g.paid_at, 'issued', true
FROM stage s JOIN gift g ON g.public_id = s.gift_reference
WHERE s.receipt_number <> '';
COMMIT;
"""
#: What the set-based SQL must have written as ours did: the tables' rows are counted in both.
FLOOR_TABLES = ("supporter", "campaign", "gift", "payment", "receipt")


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
    floor_url = cluster.create_database("bench_import_floor", template="bench_import_target")
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
    floor = set_based(cluster, "bench_import_floor", FLOOR_SQL.format(
        typed=", ".join(f'"{name}" text' for name in HEADER),
        columns=", ".join(f'"{name}"' for name in HEADER), file=exported), work)

    problems = []
    if f"imported: {rows:,} created, 0 updated, 0 unchanged, 0 refused" not in log:
        problems.append(f"the import did not create every row: {log[-500:]}")
    before, after = _figures(source, first, last), _figures(target, first, last)
    if before != after:
        problems.append(f"reconciliation differs: {before} != {after}")
    problems += same_rows(target, floor_url, FLOOR_TABLES)
    return against_copy(rows, exported, [ours], copy, problems, floor=floor)


def set_based(cluster, database: str, script: str, work: Path) -> dict:
    """``psql -f`` running ``script`` (the set-based SQL) in ``database``, timed from start to
    exit as COPY is."""
    path = work / f"{database}.sql"
    path.write_text(script)
    figures = measure([str(cluster.bindir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port),
                       "-U", cluster.user, "-d", database, "-X", "-q", "-f", str(path)],
                      work / "psql.log", base_env())
    print(f"  set-based SQL: {figures['seconds']:.1f}s", flush=True)
    return figures


def same_rows(ours: str, floor: str, tables: tuple[str, ...]) -> list[str]:
    """A problem for each table whose rows the set-based SQL and ours do not count alike."""
    import psycopg

    counts = []
    for url in (ours, floor):
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            counts.append({table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                           for table in tables})
    return [f"the set-based SQL wrote {counts[1][t]:,} rows in {t}, ours {counts[0][t]:,}"
            for t in tables if counts[0][t] != counts[1][t]]


def against_copy(rows: int, file: Path, runs: list[dict], copy: dict, problems: list[str],
                 *, floor: dict, **extra) -> dict:
    """The figures of an import (its first run of ``runs``; the peak memory of all) beside
    PostgreSQL's COPY of the same file and the set-based SQL (``floor``), and the goals'
    verdict."""
    ours = runs[0]
    ratio = ours["seconds"] / copy["seconds"]
    peak_mb = max(r["max_rss_kib"] for r in runs) / 1024
    return {"backend": "postgresql", "rows": rows, "bytes": file.stat().st_size,
            "ours_seconds": ours["seconds"], "ours_cpu_seconds": ours["cpu_seconds"],
            "ours_rows_per_second": rows / ours["seconds"], "ours_peak_mb": peak_mb,
            "copy_seconds": copy["seconds"], "copy_rows_per_second": rows / copy["seconds"],
            "ratio": ratio, "floor_seconds": floor["seconds"],
            "copy_ratio_of_floor": floor["seconds"] / copy["seconds"],
            "ratio_to_floor": ours["seconds"] / floor["seconds"], "problems": problems,
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
    print(floor_line(r))
    return report("imports", opts, info, result)


def floor_line(r: dict) -> str:
    return (f"  set-based SQL {r['floor_seconds']:.1f}s ({r['copy_ratio_of_floor']:.1f}x COPY, "
            f"with no check at all); ours is {r['ratio_to_floor']:.1f}x that")


if __name__ == "__main__":
    sys.exit(main())
