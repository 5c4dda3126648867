"""Whether an address has an account, as the time of sign-up, sign-in link and reset tells it,
at production's password hashing cost: ``python -m bench account_timing``.

For each backend (a SQLite file, then a throwaway PostgreSQL cluster) a fresh database, migrated,
with one confirmed account; then, for each topology,

- ``inline``: the embedded default, ``flask run`` (Werkzeug, jobs inline: account work is done
  once the answer is sent);
- ``rq``: ``gunicorn -w 2`` with ``REDIS_URL`` on a throwaway ``redis-server`` (the request
  queues a job; no worker runs, so nothing else takes the CPU);

``--tries`` (30) answers of each form for the account's address and as many for new addresses,
alternating (ABBA) after two warm-up tries, timed from sending the form to the answer's last
byte by this process, with a pause after each so that the server is done with the last. Argon2
runs at the app's defaults (production's: 3 passes, 64 MiB, 4 lanes) unless the environment says
otherwise. Rate limits are raised out of the way. Prints the medians and their difference, and
writes ``bench/results/account_timing-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from bench.common import (
    ROOT,
    Server,
    base_env,
    check_backends,
    free_port,
    load_text,
    measured_machine,
    run_checked,
    scratch_database,
    write_results,
)

KNOWN = "known@example.org"
PASSWORD = "olive trees above the wadi"
FORMS = {
    "sign-up": ("/account/signup", lambda email: {"email": email, "password": PASSWORD,
                                                  "name": "Noa Levi"}),
    "sign-in link": ("/account/signin/link", lambda email: {"email": email}),
    "reset": ("/account/reset", lambda email: {"email": email}),
}


class FlaskRun(Server):
    """``flask run`` (the embedded default's server) instead of gunicorn."""

    def start(self, timeout: float = 60) -> FlaskRun:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "run", "--no-reload",
                 "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("flask run exited:\n" + self.log_tail())
            if self.healthy():
                return self
            time.sleep(0.2)
        raise RuntimeError("flask run not healthy:\n" + self.log_tail())


def _request(port: int, method: str, path: str, headers: dict, body: str | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read().decode(errors="replace")
        return response, data, time.perf_counter() - started
    finally:
        connection.close()


def measure(port: int, path: str, fields, tries: int, pause: float) -> dict:
    response, page, _ = _request(port, "GET", path, {"Host": f"127.0.0.1:{port}"})
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]*)"', page).group(1)
    times = {True: [], False: []}
    for known in [True, False] * 2 + [True, False, False, True] * (tries // 2):
        email = KNOWN if known else f"new-{uuid.uuid4().hex[:12]}@example.org"
        response, body, seconds = _request(
            port, "POST", path, {"Host": f"127.0.0.1:{port}", "Cookie": cookie,
                                 "Content-Type": "application/x-www-form-urlencoded"},
            urlencode({"csrf_token": token, **fields(email)}))
        if response.status != 303:
            raise RuntimeError(f"POST {path} answered {response.status}: {body[:500]}")
        times[known].append(seconds)
        time.sleep(pause)
    known, new = (statistics.median(times[kind][2:]) for kind in (True, False))
    return {"known_ms": round(known * 1000, 1), "new_ms": round(new * 1000, 1),
            "difference": round(abs(known - new) / min(known, new), 3),
            "tries": len(times[True]) - 2}


def make_account(database_url: str) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app import create_app
    from app.accounts.passwords import Hasher
    from app.accounts.services import get_or_create_supporter
    from app.db import utcnow
    from app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "bench"})
    with app.app_context():
        supporter = get_or_create_supporter(KNOWN, "Noa Levi")
        supporter.password_hash = Hasher.from_config(app.config).hash(PASSWORD)
        supporter.email_verified_at = utcnow()
        db.session.commit()
        db.engine.dispose()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench account_timing",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--topologies", default="inline,rq")
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds after each answer, for the server's after-response work")
    opts, _ = parser.parse_known_args(argv)
    check_backends(parser, opts)
    info = measured_machine()
    results = []
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-timing-")))
        redis_url = None
        if "rq" in opts.topologies:
            sys.path.insert(0, str(ROOT))
            from tests.support.redisserver import RedisServer

            redis_url = stack.enter_context(RedisServer()).url
        for backend in opts.backends:
            url, _ = scratch_database(backend, work, "timing", stack)
            env = base_env(DATABASE_URL=url, SECRET_KEY="bench-secret", FLASK_APP="app",
                           MAIL_OUTBOX_DIR=str(work / f"outbox-{backend}"),
                           RATELIMIT_ACCOUNT_MAIL="100000 per minute",
                           RATELIMIT_ACCOUNT_MAIL_PER_EMAIL="100000 per minute")
            run_checked([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], env,
                        timeout=300)
            make_account(url)
            for topology in opts.topologies.split(","):
                port = free_port()
                server_env = {**env, "PUBLIC_URL": f"http://127.0.0.1:{port}"}
                if topology == "rq":
                    server = Server("app:create_app()", {**server_env, "REDIS_URL": redis_url},
                                    work / f"gunicorn-{backend}.log", workers=2)
                else:
                    server = FlaskRun("app", server_env, work / f"flask-{backend}.log",
                                      workers=1)
                server.port = port
                server.start()
                try:
                    for name, (path, fields) in FORMS.items():
                        figures = measure(port, path, fields, opts.tries, opts.pause)
                        results.append({"backend": backend, "topology": topology,
                                        "form": name, **figures})
                        print(f"{backend:<10} {topology:<6} {name:<13} account "
                              f"{figures['known_ms']:>7.1f} ms   new address "
                              f"{figures['new_ms']:>7.1f} ms   difference "
                              f"{figures['difference']:.0%}", flush=True)
                finally:
                    server.proc.terminate()
                    server.proc.wait(timeout=30)
    info["loadavg_after"] = os.getloadavg()
    print(f"load average before / after: {load_text(info['loadavg_before'])} -> "
          f"{load_text(info['loadavg_after'])}")
    print(f"results: {write_results('account_timing', machine=info, results=results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
