"""Year-end statements for 10,000 donors: ``flask finance statements --year Y``, timed.

For each backend (a SQLite file in a temporary folder, then a throwaway PostgreSQL cluster): a
fresh database migrated by the project's own Alembic migrations, the demo campaigns, and
``--donors`` donors who each gave one to six times last year (in the organisation's zone), every
gift with its charge and its numbered receipt. One donor in ten has a Hebrew or Arabic name, so
that share of the PDFs embeds the Unicode font (the slower path). Then the command finance runs,
in its own process, timed from start to exit (start-up included): it renders each donor's PDF,
queues the email with the PDF attached and delivers it (to ``.eml`` files in a temporary outbox
folder), batch by batch.

Checks before the figure counts: one statement email per donor, each delivered (a file in the
outbox), a sample parsed with the stdlib with a PDF attachment, and a second run that emails
nobody.

Goal (from the issue): under 60 s for 10,000 donors. The command renders PDFs in a process per
CPU beside its own (``--workers``); the CPU seconds of all of them are reported too, the steadier
figure when other work shares the machine.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
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

GOAL_SECONDS = 60.0
OTHER_SCRIPTS = ["נועה לוי", "יוסף מזרחי", "رنا الحلبي", "عمر الخطيب", "שרה כהן", "ليلى ناصر"]


def populate(donors: int, year: int, rng: random.Random) -> dict:
    """``donors`` supporters with one to six paid, receipted gifts each in ``year``."""
    from flask import current_app
    from sqlalchemy import func, insert, select, text

    from app import jobs
    from app.accounts.models import Supporter
    from app.campaigns.models import Campaign
    from app.db import utcnow
    from app.demo import FIRST, LAST, demo_origin, seed_demo
    from app.extensions import db
    from app.finance.models import Receipt, ReceiptCounter
    from app.giving.models import Frequency, Gift, GiftStatus
    from app.payments.models import Payment, PaymentKind
    from app.templating import org_zone

    now = utcnow()
    zone, founded = demo_origin(current_app.config)
    seed_demo(now, zone=zone, founded=founded)
    jobs.commit()
    campaigns = list(db.session.scalars(select(Campaign).where(Campaign.currency == "USD")))
    zone = org_zone()
    start = datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
    span = int((datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC) - start).total_seconds())
    base_s = db.session.scalar(select(func.coalesce(func.max(Supporter.id), 0)))
    base_g = db.session.scalar(select(func.coalesce(func.max(Gift.id), 0)))
    base_p = db.session.scalar(select(func.coalesce(func.max(Payment.id), 0)))
    run = secrets.token_hex(3)
    # The demo data's own receipts of the year come first: continue after them.
    base_r = db.session.scalar(select(ReceiptCounter.last_sequence).where(
        ReceiptCounter.year == year)) or 0
    supporters, gifts, payments, receipts = [], [], [], []
    planned = []
    for i in range(donors):
        name = (rng.choice(OTHER_SCRIPTS) if rng.random() < 0.1
                else f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        supporters.append({"id": base_s + i + 1, "email": f"donor-{run}-{i}@example.org",
                           "name": name, "created_at": now})
        for _ in range(rng.randint(1, 6)):
            planned.append((base_s + i + 1, name, start + timedelta(seconds=rng.randrange(span))))
    planned.sort(key=lambda p: p[2])  # receipts are numbered in the order gifts were paid
    for n, (supporter_id, name, when) in enumerate(planned, start=1):
        campaign = rng.choice(campaigns)
        amount = rng.choice([1800, 2500, 3600, 5000, 10000, 25000])
        gift_id = base_g + n
        gifts.append({"id": gift_id, "public_id": secrets.token_urlsafe(16),
                      "campaign_id": campaign.id, "supporter_id": supporter_id,
                      "frequency": Frequency.ONE_TIME, "amount": amount, "fee_covered": 0,
                      "currency": "USD", "status": GiftStatus.PAID, "donor_name": name,
                      "anonymous": False, "provider": "demo", "created_at": when,
                      "paid_at": when})
        payments.append({"id": base_p + n, "gift_id": gift_id, "campaign_id": campaign.id,
                         "kind": PaymentKind.CHARGE, "amount": amount, "currency": "USD",
                         "provider": "demo", "provider_id": f"bench_{run}_{n}",
                         "occurred_at": when, "created_at": when})
        receipts.append({"gift_id": gift_id, "year": year, "sequence": base_r + n,
                         "number": f"{year}-{base_r + n:06d}", "amount": amount, "currency": "USD",
                         "issued_at": when})
    for model, rows in ((Supporter, supporters), (Gift, gifts), (Payment, payments),
                        (Receipt, receipts)):
        for at in range(0, len(rows), 20_000):
            db.session.execute(insert(model), rows[at:at + 20_000])
    db.session.merge(ReceiptCounter(year=year, last_sequence=base_r + len(planned)))
    if db.session.get_bind().dialect.name == "postgresql":
        for table in ("supporter", "gift", "payment", "receipt"):
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
    jobs.commit()
    if db.session.get_bind().dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return {"donors": donors, "gifts": len(planned)}


def statements(flask: str, year: int, env: dict[str, str],
               workers: int) -> tuple[float, float, str]:
    """Run the command; its wall-clock seconds, CPU seconds (with its worker processes; on a
    busy machine the steadier figure), and output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([flask, "--app", "app", "finance", "statements", "--year",
                             str(year), "--workers", str(workers)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode:
        raise RuntimeError(f"flask finance statements failed:\n{result.stdout}\n"
                           f"{result.stderr}")
    return seconds, cpu, result.stdout


def run_backend(backend: str, opts: argparse.Namespace, work: Path, stack: ExitStack) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from app import create_app
    from app.db import utcnow
    from app.extensions import db
    from app.mail import OutboundEmail

    print(f"\n[{backend}] preparing {opts.donors:,} donors ...", flush=True)
    url, _ = scratch_database(backend, work, "bench_statements", stack)
    outbox = work / f"outbox-{backend}"
    env = base_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(16), MAIL_OUTBOX_DIR=str(outbox))
    env.pop("MAIL_URL", None)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": env["SECRET_KEY"]})
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        year = utcnow().year - 1
        data = populate(opts.donors, year, random.Random(2006))
        # The demo data seeded first has donors with receipts of the year too: they get
        # statements as well, and the checks count them.
        from app.finance.statements import count_donors

        expected = data["statements"] = count_donors(year)
        print(f"  data ready in {time.perf_counter() - started:.1f}s: {data}", flush=True)
        db.session.remove()
        db.engine.dispose()

    flask = str(Path(sys.executable).parent / "flask")
    load_before = os.getloadavg()
    seconds, cpu, output = statements(flask, year, env, opts.workers)
    load_after = os.getloadavg()
    print(output.rstrip(), flush=True)
    print(f"  {expected:,} statements in {seconds:.1f}s "
          f"({expected / seconds:,.0f} donors/s), {cpu:.1f} CPU seconds", flush=True)

    problems = []
    files = sorted(outbox.glob("*.eml"))
    if len(files) != expected:
        problems.append(f"{len(files):,} files in the outbox for {expected:,} donors")
    sizes = []
    for path in files[:: max(1, len(files) // 20)]:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        pdfs = [a for a in msg.iter_attachments() if a.get_content_type() == "application/pdf"]
        if msg.defects or len(pdfs) != 1 or not pdfs[0].get_content().startswith(b"%PDF-"):
            problems.append(f"a malformed message: {path.name}")
            break
        sizes.append(len(pdfs[0].get_content()))
    with app.app_context():
        queued = db.session.scalar(select(func.count()).select_from(OutboundEmail).where(
            OutboundEmail.dedupe_key.like(f"statement:{year}:%"),
            OutboundEmail.sent_at.is_not(None)))
        db.session.remove()
        db.engine.dispose()
    if queued != expected:
        problems.append(f"{queued:,} statement emails sent for {expected:,} donors")
    again_seconds, _, again = statements(flask, year, env, opts.workers)
    if f"0 emailed now, {expected:,} already emailed earlier" not in again:
        problems.append(f"a second run emailed someone: {again.strip().splitlines()[-1]}")
    print(f"  second run: {again.strip().splitlines()[-1]} ({again_seconds:.1f}s)", flush=True)
    shutil.rmtree(outbox, ignore_errors=True)
    for problem in problems:
        print(f"  CHECK FAILED: {problem}", flush=True)
    return {"backend": backend, "year": year, **data, "seconds": seconds, "cpu_seconds": cpu,
            "workers": opts.workers,
            "donors_per_second": expected / seconds, "second_run_seconds": again_seconds,
            "average_pdf_bytes": sum(sizes) // max(1, len(sizes)),
            "loadavg_before": load_before, "loadavg_after": load_after, "problems": problems,
            "goal_met": seconds < GOAL_SECONDS}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench statements",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated, of: sqlite, postgresql (default: both)")
    parser.add_argument("--donors", type=int, default=10_000, help="donors (default 10000)")
    parser.add_argument("--workers", type=int, default=0,
                        help="the command's --workers (default 0: one per CPU)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the goal is missed")
    opts, _ = parser.parse_known_args(argv)  # the other benchmarks' options are ignored
    check_backends(parser, opts)
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    results, info = run_backends("statements", opts, run_backend)
    print(f"\nYear-end statements, --workers {opts.workers} (0: one per CPU), "
          f"{os.cpu_count()} CPU(s); goal < {GOAL_SECONDS:.0f} s")
    print(f"{'backend':<12}{'donors':>8}{'gifts':>8}{'emailed':>9}{'seconds':>9}{'CPU s':>8}"
          f"{'donors/s':>10}"
          f"{'PDF bytes':>11}  goal")
    for r in results:
        print(f"{r['backend']:<12}{r['donors']:>8,}{r['gifts']:>8,}{r['statements']:>9,}"
              f"{r['seconds']:>9.1f}"
              f"{r['cpu_seconds']:>8.1f}{r['donors_per_second']:>10,.0f}"
              f"{r['average_pdf_bytes']:>11,}  {'met' if r['goal_met'] else 'NOT met'}")
    path = write_results("statements", settings=vars(opts), machine=info, results=results)
    print(f"results: {path.relative_to(ROOT)}")
    if any(r["problems"] for r in results):
        return 1
    if opts.strict and not all(r["goal_met"] for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
