"""The import pages' forms: the upload (with the import's switches), the confirmation."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField


class UploadForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("Choose the CSV file to import.")])


def upload_form(options: tuple[tuple[str, str], ...], **kwargs) -> UploadForm:
    """The upload form with a checkbox per switch of the import (``ImportKind.options``)."""

    class WithOptions(UploadForm):
        pass

    for name, label in options:
        setattr(WithOptions, f"option_{name}", BooleanField(label))
    return WithOptions(**kwargs)


class ConfirmForm(FlaskForm):
    """Only its CSRF token: "import this file now"."""
