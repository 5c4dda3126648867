"""The code's structure: no import cycles inside ``app``, services that are given their
collaborators instead of reading the app, and SQLite's write lock taken by requests that may
write (decided in a request hook, not by the engine reading the request)."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import text

from app.extensions import csrf, db
from tests.support.concurrency import sqlite_write_lock

APP = Path(__file__).resolve().parent.parent / "app"


def _modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        parts = list(path.relative_to(APP.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _top_level_imports(body: list[ast.stmt]):
    """Imports that run when the module is imported (``if TYPE_CHECKING:`` ones count: the type
    checker follows them); those inside functions do not."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _top_level_imports(inner)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the ``app`` modules it imports at its top level (``from app.x import y`` is an
    import of ``app.x.y`` when that is a module, else of ``app.x``)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module:
                targets.update(f"{node.module}.{alias.name}"
                               if f"{node.module}.{alias.name}" in modules else node.module
                               for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other, directly or around a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_in_app_imports_itself_back():
    graph = import_graph(_modules())
    assert "app.staff.figures" in graph["app.staff.rollup"]  # the walk sees real imports
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_and_ignores_imports_inside_functions(tmp_path):
    package = tmp_path / "app"
    (package / "pkg").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pkg" / "__init__.py").write_text("")
    (package / "pkg" / "a.py").write_text("from app.pkg import b\n")
    (package / "pkg" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.pkg.c import C\n")
    (package / "pkg" / "c.py").write_text("from app.pkg.a import x\n")
    (package / "pkg" / "d.py").write_text(
        "from app.pkg import a\n\ndef later():\n    from app.pkg import d\n")
    modules = {".".join(p.relative_to(tmp_path).with_suffix("").parts): p
               for p in package.rglob("*.py") if p.name != "__init__.py"}
    assert cycles(import_graph(modules)) == [["app.pkg.a", "app.pkg.b", "app.pkg.c"]]


#: What reads the running app: Flask's ``current_app``, and our helpers that read it.
APP_READERS = {"current_app", "current_provider", "current_mailer", "org_zone"}

#: Modules that own the app, and so may read it: the factory and settings, request hooks and
#: helpers, the jobs machinery and the scheduled jobs, Jinja's filters, link building, and the
#: readers views, commands and jobs call (``current_provider``).
ENTRY_MODULES = {APP / name for name in (
    "__init__.py", "config.py", "core.py", "errors.py", "metrics.py", "jobs.py", "schedule.py",
    "templating.py", "urls.py", "payments/providers.py", "accounts/auth.py",
    "accounts/background.py", "campaigns/pages.py")}

#: Every other module but views and commands holds services (rules that views, commands and
#: jobs call): a new module is checked without being listed.
SERVICE_MODULES = sorted(
    path for path in APP.rglob("*.py")
    if path not in ENTRY_MODULES and path.name != "cli.py"
    and not path.name.endswith("views.py"))

#: The functions of those modules that may read the app, and why. Any other use fails the
#: test, and so does an entry here that no longer reads it (shrink the list).
ALLOWED_APP_READS = {
    # The factory-side reader views, commands and jobs call.
    "app/mail.py:current_mailer": {"current_app"},
    # The job queued after the commit, and the command: entry points that own the app.
    "app/mail.py:deliver_emails": {"current_mailer"},
    "app/mail.py:send_pending_command": {"current_mailer"},
    # The jobs queued for stored events: entry points that own the app.
    "app/payments/events.py:process_event_job": {"current_app"},
    "app/payments/events.py:process_events_job": {"current_app", "current_provider"},
    # Builds send_digest's collaborators from the settings, for the news command and the
    # scheduler's daily-email job (a factory: send_digest itself is given them).
    "app/news/digest.py:send_configured_digest": {"current_app"},
    # ``flask seed-demo``, a command beside the demo it loads.
    "app/demo.py:seed_demo_command": {"current_app"},
    # The job that runs a staff page's import: an entry point that owns the app, handing the
    # settings to the import's service.
    "app/imports/background.py:run_import_job": {"current_app"},
    # A request helper (the levels of the signed-in supporter's membership).
    "app/accounts/membership.py:current_levels": {"current_app"},
}


def app_reads(source: str) -> dict[str, set[str]]:
    """Function (``Class.method``; ``<module>`` at the top level) -> the app readers it uses:
    a name loaded, or ``<anything>.current_app``."""
    found: dict[str, set[str]] = {}

    def walk(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                walk(child, f"{where}.{child.name}" if where else child.name)
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load) \
                    and child.id in APP_READERS:
                found.setdefault(where or "<module>", set()).add(child.id)
            elif isinstance(child, ast.Attribute) and child.attr == "current_app":
                found.setdefault(where or "<module>", set()).add(child.attr)
            walk(child, where)

    walk(ast.parse(source), "")
    return found


def test_services_are_given_their_collaborators_instead_of_reading_the_app():
    reads = {f"{path.relative_to(APP.parent)}:{where}": names
             for path in SERVICE_MODULES
             for where, names in app_reads(path.read_text(encoding="utf-8")).items()}
    assert {key: reads[key] for key in reads.keys() - ALLOWED_APP_READS.keys()} == {}
    assert reads == ALLOWED_APP_READS


def test_app_reads_finds_each_way_of_reading_the_app():
    source = (
        "import flask\n"
        "from flask import current_app\n"
        "ZONE = org_zone()\n"
        "def sender():\n    return current_app.config['MAIL_FROM']\n"
        "class Refunds:\n    def provider(self):\n        return current_provider()\n"
        "def nested():\n    def inner():\n        return flask.current_app\n    return inner\n"
        "def given(settings, zone):\n    return settings.org_zone, zone\n"  # not the app
    )
    assert app_reads(source) == {"<module>": {"org_zone"}, "sender": {"current_app"},
                                 "Refunds.provider": {"current_provider"},
                                 "nested.inner": {"current_app"}}


def _probe_app(make_app, tmp_path):
    """An app on an SQLite file with one route that reads, then reports whether another
    connection could take the write lock meanwhile."""
    path = tmp_path / "lock.db"
    app = make_app(f"sqlite:///{path}")

    @csrf.exempt
    def probe():
        db.session.execute(text("SELECT 1"))
        try:
            return sqlite_write_lock(path)
        finally:
            db.session.rollback()

    app.add_url_rule("/_probe", view_func=probe, methods=["GET", "POST"])
    return app


def test_a_request_that_may_write_takes_sqlite_write_lock_up_front(make_app, tmp_path):
    client = _probe_app(make_app, tmp_path).test_client()
    assert client.post("/_probe").text == "database is locked"
    assert client.get("/_probe").text == "free"  # reads stay deferred
