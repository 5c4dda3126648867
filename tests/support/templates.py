"""Templates fail loudly under tests: a name a template binds (a macro it defines or imports, a
``{% set %}``) must never equal a variable its render context carries.

Such a name silently wins over the variable: ``staff/dashboard.html`` imported the macro
``button`` while its view passed the button's form as ``button``, so ``form.csrf_token`` was read
from the macro and every state button went out without a CSRF token. ``check_render`` is
connected to Flask's ``before_render_template`` for the whole suite (``tests/conftest.py``), so
every page and email a test renders is checked against the context it really gets (the view's
variables and the context processors': ``g``, ``request``, ``org_name``...).
"""

from __future__ import annotations

from jinja2 import Environment, nodes


def _bound_here(node: nodes.Node) -> set[str]:
    """Names the statements under ``node`` bind in the template's own scope: macros, imports
    and ``set``. Not a macro's parameters or its body, nor a loop's variables: those are local
    to the macro or the loop."""
    names: set[str] = set()
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.Macro):
            names.add(child.name)
            continue
        if isinstance(child, nodes.FromImport):
            names.update(n[1] if isinstance(n, tuple) else n for n in child.names)
        elif isinstance(child, nodes.Import):
            names.add(child.target)
        elif isinstance(child, (nodes.Assign, nodes.AssignBlock)):
            target = child.target  # a name, or a tuple of names: {% set a, b = pair %}
            names.update(n.name for n in [target, *target.find_all(nodes.Name)]
                         if isinstance(n, nodes.Name))
        names |= _bound_here(child)
    return names


_PARSED: dict[tuple[str, str], tuple[frozenset[str], tuple[str, ...]]] = {}


def _parsed(env: Environment, name: str, source: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """The names a template's source binds, and the templates it extends or includes by a
    constant name (they render with the same context). Cached by source, not by app: the suite
    builds many apps on the same templates."""
    if (name, source) in _PARSED:
        return _PARSED[name, source]
    tree = env.parse(source, name)
    references = tuple(n.template.value for n in tree.find_all((nodes.Extends, nodes.Include))
                       if isinstance(n.template, nodes.Const)
                       and isinstance(n.template.value, str))
    _PARSED[name, source] = frozenset(_bound_here(tree)), references
    return _PARSED[name, source]


def _bound_names(env: Environment, name: str) -> dict[str, str]:
    """Each name bound by the template ``name`` or one it extends or includes -> that template."""
    source, _, _ = env.loader.get_source(env, name)
    bound, references = _parsed(env, name, source)
    found: dict[str, str] = {}
    for referenced in references:
        found.update(_bound_names(env, referenced))
    found.update(dict.fromkeys(bound, name))
    return found


def shadowed(env: Environment, template_name: str, context_names) -> dict[str, str]:
    """The context's names that ``template_name`` (or a template it extends or includes) binds
    itself, each with the template that binds it."""
    bound = _bound_names(env, template_name)
    return {name: bound[name] for name in sorted(set(context_names) & set(bound))}


def check_render(app, template, context, **_) -> None:
    """A ``before_render_template`` receiver: fail the render of a template that hides one of
    its context's variables. Templates from strings (no name) are not checked."""
    if template.name is None:
        return
    hidden = shadowed(app.jinja_env, template.name, context)
    if hidden:
        raise AssertionError(
            f"{template.name} hides variables its context passes: "
            + ", ".join(f"{name!r} (bound in {where})" for name, where in hidden.items())
            + ". Rename the macro or the variable.")
