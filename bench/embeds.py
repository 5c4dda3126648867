"""The embeds an article view asks for, under gunicorn, against a bare Flask app.

Prepared as ``campaign_page`` (a fresh database per backend, the demo seeded, ``twenty-years``
topped up to ``--gifts`` paid gifts), with the newsroom's site in ``EMBED_ORIGINS``; then the
bare app (``bench/bare_app.py``) and the app under the same ``gunicorn -w 2``, each loaded by
the same ``wrk`` on 127.0.0.1: the campaign box, ``/embed.js``, the sign-up box and the prompts'
live rules (``/embed/prompts/live``, app/prompts: embed.js decides in the reader's browser with
them, so it is what every article view of a ``data-newsfund="prompt"`` box asks: the demo's
prompts) and the box of the first of them, each for one article, as every reader of it asks.

Every one of them is also cacheable by browsers and shared caches (``Cache-Control`` with
``stale-while-revalidate``, an ``ETag``), which this does not use: each request reaches the app,
whose edge (app/edge.py) answers those that are the same for every reader from memory. The
decision the server still makes (``/embed/prompts/decision``, for a reader with a follow-box
reader token, or a page without Web Crypto) is not measured.

The bare app is measured again right before each target, and each ratio is taken within its
pair: on a machine shared with other work the load moves from one measurement to the next.

Goal (from the issue): each at >= 90% of the bare app's throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

from bench import campaign_page
from bench.common import (
    DEMO_SLUG,
    ROOT,
    Server,
    base_env,
    load_text,
    measured_machine,
    scratch_database,
    tree_cpu,
    write_results,
)

NEWSROOM = "https://www.levantwire.example"
ARTICLE = quote(f"{NEWSROOM}/2026/12/water-runs-out", safe="")
PATHS = {
    "campaign box": f"/embed/campaigns/{DEMO_SLUG}?page={ARTICLE}",
    "embed.js": "/embed.js",
    "sign-up box": f"/embed/news/subscribe?page={ARTICLE}",
    "prompt rules": "/embed/prompts/live",
}
#: For reading the ratios: the app's cheapest route (Flask, the app's hooks, one SELECT 1), the
#: ceiling for any of its routes. Not part of the goal.
FLOOR = ("app /healthz", "/healthz")
WORKERS = campaign_page.WORKERS
GOAL_RATIO = 0.9


def check(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        return response.read()


def prompt_box(base_url: str) -> str:
    """The box embed.js frames for the first of the demo's live prompts (variant A)."""
    live = json.loads(check(base_url + PATHS["prompt rules"]))["prompts"]
    if not live:
        raise RuntimeError("no prompt is live in the demo: nothing for a prompt box")
    return f"/embed/prompts/{live[0]['id']}/a?page={ARTICLE}&track=1"


def run_backend(backend: str, bare: Server, opts, work: Path, stack: ExitStack) -> dict:
    print(f"\n[{backend}] preparing the database ...", flush=True)
    url, _ = scratch_database(backend, work, "bench", stack)
    recheck = {} if opts.recheck is None else {"CAMPAIGN_PAGE_RECHECK_SECONDS": opts.recheck}
    env = base_env(**recheck, DATABASE_URL=url, SECRET_KEY=secrets.token_hex(32),
                   EMBED_ORIGINS=NEWSROOM, MAIL_OUTBOX_DIR=str(work / f"outbox-{backend}"))
    count = campaign_page.prepare_database(env, opts.gifts)
    results, bares = {}, {}
    with Server("app:create_app()", env, work / f"gunicorn-{backend}.log",
                workers=WORKERS) as app_server:
        targets = [*PATHS.items(), ("prompt box", prompt_box(app_server.base_url)), FLOOR]
        for name, path in targets:
            check(app_server.base_url + path)
            # The bare app right before each: on a shared machine the load moves from one
            # measurement to the next, and a ratio means something only within a pair.
            bares[name] = measure(f"bare app (before {name})", bare, "/", opts)
            results[name] = measure(f"{name} ({backend})", app_server, path, opts)
    floor = results.pop(FLOOR[0])
    ratios = {name: r["rps"] / bares[name]["rps"] for name, r in results.items()}
    cpu_ratios = {name: bares[name]["cpu_us"] / r["cpu_us"] for name, r in results.items()}
    return {"backend": backend, "gifts": count, "bare": bares, "embeds": results,
            "healthz": floor, "healthz_ratio": floor["rps"] / bares[FLOOR[0]]["rps"],
            "ratios": ratios, "cpu_ratios": cpu_ratios,
            "goal_met": all(r >= GOAL_RATIO for r in ratios.values())}


def measure(label: str, server: Server, path: str, opts) -> dict:
    """``campaign_page.measure``, with the server's CPU time per request (its gunicorn
    processes', from /proc, over the measured seconds only): unlike requests per second, it
    hardly moves with what else the machine runs, so it tells the cost when the load does not
    let the throughput."""
    if opts.warmup:
        campaign_page.wrk(server.base_url + path, threads=opts.threads,
                          connections=opts.connections, duration=opts.warmup)
    cpu = tree_cpu(server.proc.pid)
    summary = campaign_page.measure(label, server.base_url + path,
                                    argparse.Namespace(**{**vars(opts), "warmup": 0}))
    summary["cpu_us"] = 1e6 * (tree_cpu(server.proc.pid) - cpu) / max(summary["requests"], 1)
    print(f"    {summary['cpu_us']:.0f} us of the server's CPU a request", flush=True)
    return summary


def report(results: list[dict], opts, info: dict) -> None:
    print(f"\nEmbeds vs bare Flask app: gunicorn -w {WORKERS}, wrk -t{opts.threads} "
          f"-c{opts.connections} -d{opts.duration}s (after {opts.warmup}s warm-up), "
          f"{info.get('cpus_usable', info['cpus'])} CPU(s) shared by wrk and the servers")
    print(f"load average before {load_text(info['loadavg_before'])}, "
          f"after {load_text(info['loadavg_after'])}")
    header = (f"{'target':<50}{'req/s':>7}{'p50':>9}{'bare req/s':>11}{'ratio':>7}"
              f"{'CPU us':>8}{'bare':>6}{'ratio':>7}")
    print(header)
    print("-" * len(header))
    for r in results:
        rows = [(f"{name}, {r['backend']}", s, r["bare"][name], r["ratios"][name])
                for name, s in r["embeds"].items()]
        rows.append((f"  reference: {FLOOR[0]}, {r['backend']}", r["healthz"],
                     r["bare"][FLOOR[0]], r["healthz_ratio"]))
        for label, s, bare, ratio in rows:
            print(f"{label:<50}{s['rps']:>7.0f}{s['p50_us'] / 1000:>7.1f}ms{bare['rps']:>11.0f}"
                  f"{ratio:>7.0%}{s['cpu_us']:>8.0f}{bare['cpu_us']:>6.0f}"
                  f"{bare['cpu_us'] / s['cpu_us']:>7.0%}")
    print("ratio: the target's requests/s over the bare app's, measured right before it; CPU "
          "ratio: the bare app's CPU per request over the target's (what a core of its own "
          "would serve, as a share of the bare app's)")
    for r in results:
        print(f"{r['backend']}: goal >= {GOAL_RATIO:.0%} of the bare app "
              f"{'met' if r['goal_met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    opts = campaign_page.parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: `apt-get install wrk`.", file=sys.stderr)
        return 2
    info = measured_machine()
    results: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="newsfund-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        bare = Server("bench.bare_app:app", base_env(), work / "gunicorn-bare.log",
                      workers=WORKERS)
        stack.callback(bare.stop)
        bare.start()
        for backend in opts.backends:
            results.append(run_backend(backend, bare, opts, work, stack))
    info["loadavg_after"] = os.getloadavg()
    report(results, opts, info)
    path = write_results("embeds", goal_ratio=GOAL_RATIO, settings={
        "workers": WORKERS, "threads": opts.threads, "connections": opts.connections,
        "duration_s": opts.duration, "warmup_s": opts.warmup, "gifts": opts.gifts,
        "paths": PATHS, "recheck_seconds": opts.recheck}, machine=info, results=results)
    print(f"\nresults: {path.relative_to(ROOT)}")
    if any(s["error_count"] for r in results
           for s in [*r["bare"].values(), *r["embeds"].values(), r["healthz"]]):
        print("some requests failed; the figures are not valid", file=sys.stderr)
        return 1
    return 1 if opts.strict and not all(r["goal_met"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
