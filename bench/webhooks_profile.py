"""Where a webhook event's time goes: one process, the Flask test client, no server, no wrk.

``python -m bench.webhooks_profile [--backend postgresql] [--events 300] [--cprofile FILE]``

Prepares a database like ``bench/webhooks.py`` (migrated, seeded, pending one-time gifts), starts
the Stripe API stub and builds the app in this process as the Stripe provider. After a warm-up,
it delivers ``--events`` fresh ``payment_intent.succeeded`` events, then the same events again
(duplicates), and prints per event: wall and CPU time (this thread only, so not the stub's) of
each step of the pipeline, and the SQL statements, transactions and pool checkouts it took.
Steps nest as indented; a step the code no longer has is left out. ``--cprofile FILE`` also
writes a cProfile of the fresh events (``python -m pstats FILE``, or snakeviz).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import functools
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import webhooks as wh
from bench.common import base_env, scratch_database

#: (label, module, attribute path): the steps of a fresh event, nested by indentation.
STEPS = [
    ("receive_event", "app.payments.views", "receive_event"),
    ("  parse_event (signature, JSON)", "app.payments.stripe", "StripeProvider.parse_event"),
    ("  record_gift_payment", "app.giving.services", "record_gift_payment"),
    ("    _queue_receipt", "app.giving.services", "_queue_receipt"),
    ("      queue_email", "app.giving.services", "queue_email"),
    ("        render_template", "app.mail", "render_template"),
    ("jobs.commit (commit, then the after-commit jobs)", "app.jobs", "commit"),
    ("  job: deliver_emails", "app.mail", "deliver_emails"),
    ("    outbox file write", "app.mail", "OutboxTransport.send"),
    ("  job: settle_charge_job", "app.payments.events", "settle_charge_job"),
    ("    charge_details (Stripe API call)", "app.payments.stripe",
     "StripeProvider.charge_details"),
    ("Session.commit (every transaction)", "sqlalchemy.orm", "Session.commit"),
]


class Timings:
    def __init__(self):
        self.wall = collections.defaultdict(float)
        self.cpu = collections.defaultdict(float)
        self.calls = collections.Counter()
        self.sql = collections.Counter()

    def clear(self) -> None:
        for store in (self.wall, self.cpu, self.calls, self.sql):
            store.clear()

    def wrap(self, label: str, func):
        @functools.wraps(func)
        def timed(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.wall[label] += time.perf_counter() - wall
                self.cpu[label] += time.thread_time() - cpu
                self.calls[label] += 1
        return timed

    def install(self, stack: ExitStack) -> None:
        import importlib

        for label, module_name, path in STEPS:
            owner = importlib.import_module(module_name)
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent, None)
            original = getattr(owner, name, None) if owner is not None else None
            if original is None:
                continue
            setattr(owner, name, self.wrap(label, original))
            stack.callback(setattr, owner, name, original)

    def listen(self, engine) -> None:
        from sqlalchemy import event

        def count(name):
            def listener(*args, **kwargs):
                self.sql[name] += 1
            return listener

        event.listen(engine, "before_cursor_execute", count("statements"))
        event.listen(engine, "begin", count("transactions"))
        event.listen(engine.pool, "checkout", count("pool checkouts (pre-ping each)"))

    def report(self, title: str, n: int, wall: float, cpu: float) -> None:
        print(f"\n{title}: {n} events, {1000 * wall / n:.2f} ms wall and {1000 * cpu / n:.2f} ms "
              f"CPU each (test client included): {n / wall:.0f}/s in this process")
        print(f"  {'step':<52}{'wall ms':>9}{'CPU ms':>9}{'calls':>7}")
        for label, _, _ in STEPS:
            if self.calls[label]:
                print(f"  {label:<52}{1000 * self.wall[label] / n:>9.2f}"
                      f"{1000 * self.cpu[label] / n:>9.2f}{self.calls[label] / n:>7.1f}")
        print("  per event: " + ", ".join(f"{v / n:.1f} {k}" for k, v in self.sql.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks_profile",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=wh.BACKENDS, default="postgresql")
    parser.add_argument("--events", type=int, default=300, help="fresh events measured")
    parser.add_argument("--cprofile", metavar="FILE", help="write a cProfile of the fresh events")
    opts = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="newsfund-bench-profile-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        url, _ = scratch_database(opts.backend, work, "bench", stack)
        stub = wh.StripeStub()
        stack.callback(stub.stop)
        stub.start()
        env = base_env(DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32),
                          MAIL_OUTBOX_DIR=str(work / "outbox"),
                          STRIPE_SECRET_KEY=wh.SECRET_KEY,
                          STRIPE_WEBHOOK_SECRET=wh.WEBHOOK_SECRET, STRIPE_API_BASE=stub.url)
        warm = max(20, opts.events // 5)
        print(f"preparing {opts.backend} with {warm + opts.events} pending gifts ...", flush=True)
        gifts = wh.prepare_database(env, warm + opts.events, work)
        events = [body for _, body in wh.fresh_events(gifts, first=1)]
        for body, (_, total, _) in zip(events, gifts, strict=True):
            stub.intents[json.loads(body)["data"]["object"]["id"]] = total

        saved = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        os.environ.clear()
        os.environ.update(env)
        from app import create_app
        from app.extensions import db

        app = create_app()
        client = app.test_client()

        def deliver(body: bytes, duplicate: bool) -> None:
            response = client.post(wh.PATH, data=body, headers={
                "Stripe-Signature": wh.sign(body, int(time.time())),
                "Content-Type": "application/json"})
            answer = response.get_json(silent=True) or {}
            if response.status_code != 200 or answer.get("duplicate") is not duplicate:
                raise RuntimeError(f"{response.status_code} {response.get_data(as_text=True)}")

        for body in events[:warm]:
            deliver(body, duplicate=False)
        timings = Timings()
        timings.install(stack)
        with app.app_context():
            timings.listen(db.engine)
        measured = events[warm:]
        for duplicate in (False, True):
            timings.clear()
            profiler = cProfile.Profile() if opts.cprofile and not duplicate else None
            wall, cpu = time.perf_counter(), time.thread_time()
            if profiler:
                profiler.enable()
            for body in measured:
                deliver(body, duplicate=duplicate)
            if profiler:
                profiler.disable()
                profiler.dump_stats(opts.cprofile)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            timings.report("duplicate" if duplicate else "fresh" + (
                " (under cProfile)" if profiler else ""), len(measured), wall, cpu)
        print(f"\nload average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}; Stripe API "
              f"calls {stub.hits}" + (f"; cProfile: {opts.cprofile}" if opts.cprofile else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
