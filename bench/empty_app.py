"""The webhook benchmark's baseline: a Flask app that reads the POSTed event and answers an empty
200, nothing else (no signature check, no database).

Served by gunicorn exactly like the real app (``gunicorn -w 1 bench.empty_app:app``) and sent the
same signed bodies, it measures what the server and Flask cost on this machine before any of the
project's own work.
"""

from flask import Flask, request

app = Flask(__name__)


@app.post("/webhooks/stripe")
def webhook():
    request.get_data()
    return "", 200


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
