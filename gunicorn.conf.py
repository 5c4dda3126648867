"""gunicorn's settings for the ``web`` process of the Procfile (``gunicorn --config
gunicorn.conf.py``), each overridable from the environment.

Reload the code without dropping a request: ``kill -HUP <master pid>`` (``systemctl reload``)
starts new workers on the new code and lets the old ones finish what they are serving
(``graceful_timeout``). The app is not preloaded in the master, so that reload reads the code
anew.
"""

import multiprocessing
import os

wsgi_app = "app:create_app()"

# Behind nginx on the same machine by default; HOST=0.0.0.0 to take connections from elsewhere.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"

# Synchronous workers, two per CPU plus one (gunicorn's advice); WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"
# A worker silent this long is killed and replaced (a request stuck on a dead connection).
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# On a reload or stop, what workers get to finish the requests they serve.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
# nginx keeps connections to us open between requests.
keepalive = 5
# Workers are replaced now and then, so that memory a worker grew is given back.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
preload_app = False

# One line per request on standard output (the process manager keeps it): client, method,
# status, size, time taken in milliseconds, user agent and the request id the app answered with.
# Never the path or the query: emailed links carry their tokens there. The app's own JSON line
# for the same request id names the route. Errors on standard error.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s %(m)s %(s)s %(b)s %(M)sms "%(a)s" %({x-request-id}o)s'
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")

# The heartbeat files in memory rather than on a disk that may stall.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
