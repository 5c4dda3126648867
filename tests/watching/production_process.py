"""What tests/watching/test_processes.py runs in a process of its own, as production runs the
app (not under the test runner, no TESTING): two web processes (this one and a forked one, as
gunicorn forks its workers) counting requests in prometheus-client's multiprocess folder, then
an app and a worker with a Sentry DSN.

``python -m tests.watching.production_process DATABASE_URL REDIS_URL SENTRY_DSN``; prints one
JSON object on stdout; logs on stderr.
"""

from __future__ import annotations

import json
import os
import sys

from app import create_app
from app.extensions import csrf

SETTINGS = {"SECRET_KEY": "k", "PUBLIC_URL": "http://donate.test", "SERVER_NAME": "donate.test",
            "TRUSTED_PROXIES": 1}


def fail_in_the_worker() -> None:
    raise LookupError("a job that fails in the worker")


def main(database_url: str, redis_url: str, sentry_dsn: str) -> None:
    app = create_app({**SETTINGS, "SQLALCHEMY_DATABASE_URI": database_url})
    report = {"sentry_imported_without_dsn": "sentry_sdk" in sys.modules}
    child = os.fork()
    if child == 0:  # another web process: its own requests, then gone
        client = app.test_client()
        for _ in range(3):
            client.get("/healthz", headers={"X-Request-ID": "from-nginx-1"})
        client.get("/campaigns/none-such")
        os._exit(0)
    os.waitpid(child, 0)
    client = app.test_client()
    for _ in range(2):
        client.get("/healthz")
    report["metrics"] = client.get("/metrics").get_data(as_text=True)

    watched = create_app({**SETTINGS, "SQLALCHEMY_DATABASE_URI": database_url,
                          "SENTRY_DSN": sentry_dsn, "REDIS_URL": redis_url,
                          "JOBS_RETRY_INTERVALS": []})

    @watched.post("/_test/boom/<token>")
    def boom(token: str):
        raise ZeroDivisionError("a request that fails")

    csrf.exempt(boom)
    # Secrets the report must not hold (spelled in two halves: the source lines around a
    # frame are sent with it).
    token, query, password = ("secret-" + "link-token", "secret-" + "query",
                              "secret-" + "password")
    answer = watched.test_client().post(f"/_test/boom/{token}?key={query}",
                                        data={"password": password})
    report["boom_status"] = answer.status_code
    from rq import Queue

    from app import jobs

    Queue(watched.config["JOBS_QUEUE"], connection=watched.extensions["jobs"].connection) \
        .enqueue(f"{__spec__.name}.fail_in_the_worker")  # by name: not __main__'s
    jobs.worker(watched).work(burst=True)
    import sentry_sdk

    sentry_sdk.flush(timeout=10)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:4])
