"""The baseline: a bare Flask app that renders a trivial Jinja template.

Served by gunicorn exactly like the real app (``gunicorn -w 2 bench.bare_app:app``), it measures
what the server, Flask and Jinja cost on this machine before any of the project's own work.
"""

from pathlib import Path

from flask import Flask, render_template

app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))


@app.get("/")
def index():
    return render_template("hello.html", title="Hello", items=["one", "two", "three"])


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
