"""The code's structure: no import cycles inside ``app``, and SQLite's write lock taken by
requests that may write (decided in a request hook, not by the engine reading the request)."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

from sqlalchemy import text

from app.extensions import csrf, db

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


def _probe_app(make_app, tmp_path):
    """An app on an SQLite file with one route that reads, then reports whether another
    connection could take the write lock meanwhile."""
    path = tmp_path / "lock.db"
    app = make_app(f"sqlite:///{path}")

    @csrf.exempt
    def probe():
        db.session.execute(text("SELECT 1"))
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
            return "free"
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            other.close()
            db.session.rollback()

    app.add_url_rule("/_probe", view_func=probe, methods=["GET", "POST"])
    return app


def test_a_request_that_may_write_takes_sqlite_write_lock_up_front(make_app, tmp_path):
    client = _probe_app(make_app, tmp_path).test_client()
    assert client.post("/_probe").text == "database is locked"
    assert client.get("/_probe").text == "free"  # reads stay deferred
