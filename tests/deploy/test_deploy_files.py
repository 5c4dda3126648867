"""deploy/ against what it runs: a systemd unit for each Procfile process, running the same
command; and an nginx site sending what the app's settings read."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHECKOUT = "/srv/newsfund"
UNITS = {"web": "newsfund-web.service", "worker": "newsfund-worker@.service",
         "scheduler": "newsfund-scheduler.service", "release": "newsfund-release.service"}


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def unit(name: str) -> dict[tuple[str, str], list[str]]:
    """Each (section, key) of a unit file and its values, in order."""
    entries: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.setdefault((section, key), []).append(value)
    return entries


def test_each_procfile_process_has_a_unit_running_the_same_command():
    processes = procfile()
    assert set(processes) == set(UNITS)
    for process, name in UNITS.items():
        service = unit(name)
        assert service[("Service", "ExecStart")] == [
            f"{CHECKOUT}/.venv/bin/{processes[process].strip()}"], process
        assert service[("Service", "WorkingDirectory")] == [CHECKOUT]
        assert service[("Service", "User")] == ["newsfund"]
        assert service[("Service", "EnvironmentFile")] == ["/etc/newsfund/newsfund.env"]
        if process != "release":  # the processes wait for the release, and start it at boot
            assert "newsfund-release.service" in service[("Unit", "After")][0].split()
            assert "newsfund-release.service" in service[("Unit", "Wants")][0].split()
            assert service[("Unit", "PartOf")] == ["newsfund.target"]


def test_the_web_unit_reloads_gracefully_and_shares_its_metrics_folder():
    web = unit("newsfund-web.service")
    assert web[("Service", "ExecReload")] == ["/bin/kill -HUP $MAINPID"]  # gunicorn's reload
    folder = web[("Service", "RuntimeDirectory")][0]
    assert f"PROMETHEUS_MULTIPROC_DIR=/run/{folder}" in web[("Service", "Environment")]
    port = next(value.partition("=")[2] for value in web[("Service", "Environment")]
                if value.startswith("PORT="))
    site = (DEPLOY / "nginx-newsfund.conf").read_text()
    assert re.search(rf"server 127\.0\.0\.1:{port};", site)


def test_the_nginx_site_sends_what_the_app_reads(tmp_path):
    site = (DEPLOY / "nginx-newsfund.conf").read_text()
    for header in ("Host $host", "X-Forwarded-For $remote_addr", "X-Forwarded-Proto $scheme",
                   "X-Forwarded-Host $host", "X-Request-ID $request_id"):
        assert f"proxy_set_header {header};" in site, header
    # Bodies as large as the largest the app takes (a webhook's).
    size = re.search(r"client_max_body_size (\d+)m;", site)
    assert size and int(size.group(1)) * 1024 * 1024 >= load_settings(tmp_path)[
        "WEBHOOK_MAX_BYTES"]
    assert f"alias {CHECKOUT}/static/;" in site and (ROOT / "static").is_dir()
    assert re.search(r"location = /metrics \{\s*return 404;\s*\}", site)
    assert "access_log /var/log/nginx/newsfund.access.log newsfund;" in site


def test_the_access_log_keeps_every_emailed_links_token_out(app):
    """The site's map, read as Python reads a regular expression, against every route of the
    app that takes a token (the sandbox's are for development only)."""
    site = (DEPLOY / "nginx-newsfund.conf").read_text()
    pattern, kept = re.search(r'~(\^\(\?<newsfund_kept>.*?)\s+"\$\{newsfund_kept\}(\.\.\.)";',
                              site).groups()
    masking = re.compile(pattern.replace("(?<", "(?P<"))
    routes = sorted({rule.rule for rule in app.url_map.iter_rules()
                     if "<token>" in rule.rule and not rule.rule.startswith("/sandbox/")})
    assert len(routes) >= 6
    for route in routes:
        path = route.replace("<token>", "SeCrEt.tOkEn-123")
        match = masking.match(path)
        assert match, route
        assert "SeCrEt" not in match.group("newsfund_kept") + kept, route


def test_gunicorns_access_log_names_no_path_and_carries_the_request_id(tmp_path):
    """The web process's own access line (gunicorn.conf.py) says who, what method, status and
    time, with the request id the app answered; never the path or query, where emailed links
    carry their tokens."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.support.pgcluster import free_port

    port = free_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PORT": str(port),
           "WEB_CONCURRENCY": "1", "SECRET_KEY": "access-log-test",
           "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
           "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    out = (tmp_path / "out.log").open("w")
    web = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "--config",
                            "gunicorn.conf.py"], cwd=ROOT, env=env, stdout=out,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/account/link/TOKEN-IN-THE-PATH?q=TOKEN-IN-QUERY",
                    timeout=5)
            except urllib.error.HTTPError as error:
                answer = error
            except OSError:
                assert time.monotonic() < deadline and web.poll() is None, "gunicorn did not serve"
                time.sleep(0.2)
                continue
            break
        with answer:
            request_id = answer.headers["X-Request-ID"]
    finally:
        web.terminate()
        web.wait(30)
        out.close()
    lines = (tmp_path / "out.log").read_text().splitlines()
    [line] = [line for line in lines if request_id in line]
    assert " GET " in line and "TOKEN" not in line
