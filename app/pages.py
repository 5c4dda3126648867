"""What the pages with a form share: a service's refusal shown beside the field it names, and
the page answered 422 when its form was sent with errors."""

from __future__ import annotations

from flask import render_template


def field_error(form, field: str | None, message: str) -> None:
    """Show ``message`` beside ``form``'s field named ``field``, or above the form when there is
    no such field (or none is named)."""
    target = getattr(form, field, None) if field else None
    if target is None:
        form.form_errors.append(message)
    else:
        target.errors = [*target.errors, message]


def form_page(template: str, form=None, **context):
    """Render a page with its form; 422 when the form was sent with errors, else 200."""
    status = 422 if form is not None and (form.errors or form.form_errors) else 200
    return render_template(template, form=form, **context), status
