"""The imports staff can run from the staff pages (``app.imports.views``): one
:class:`ImportKind` each, its pages, role and service. A feature adds its import to
:data:`KINDS` (the supporters import, for admins, beside the gift history, for finance).

``run`` is called by the background job (``app.imports.background``) with the uploaded file
(a binary file object), ``dry_run``, the staff member (``actor``), the app's settings
(``config``: the service takes what it needs from them), the switches staff chose
(``options``: names from ``ImportKind.options``, each True or False), the job's ``commit``,
a ``progress(report, rows_done, rows_total)`` callback and the file's ``name``; it returns the
:class:`~app.imports.report.ImportReport` and raises :class:`~app.imports.ImportFileError` for a
file it cannot import at all. It must send nothing unless an option says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.accounts.imports import COLUMNS as SUPPORTER_COLUMNS
from app.accounts.imports import GHOST_COLUMNS, run_supporter_import
from app.accounts.imports import OPTIONS as SUPPORTER_OPTIONS
from app.finance.imports import COLUMNS as GIFT_COLUMNS
from app.finance.imports import REQUIRED as GIFT_REQUIRED
from app.finance.imports import run_gift_import
from app.imports.report import ImportReport
from app.staff.models import Role


@dataclass(frozen=True)
class ImportKind:
    name: str  # in the pages' addresses and endpoints: /staff/imports/<name>
    title: str  # "Import gift history"
    role: Role  # who may run it (admins always may)
    columns: tuple[str, ...]  # for the header check made at upload
    required: tuple[str, ...]
    run: Callable[..., ImportReport]
    allow_unknown: bool = False
    #: Switches offered with the upload: (name, label); each reaches ``run`` in ``options``.
    options: tuple[tuple[str, str], ...] = ()
    #: A sentence or two on the upload page: what the file is, where its columns are described.
    about: str = ""
    #: Where the pages link back to (an endpoint), and the staff nav's ``active`` name.
    nav: str = ""


KINDS: dict[str, ImportKind] = {kind.name: kind for kind in (
    ImportKind(
        name="gifts", title="Import gift history", role=Role.FINANCE, columns=GIFT_COLUMNS,
        required=GIFT_REQUIRED, run=run_gift_import, nav="import_gifts",
        about="Gift history in the columns of this platform's own export (README, “Finance "
              "exports”), as another instance exports it: export the whole history as one "
              "period. Receipts keep their numbers and are marked as issued elsewhere; nothing "
              "is sent."),
    ImportKind(
        name="supporters", title="Import supporters", role=Role.ADMIN,
        # Ours or Ghost's; the import itself refuses a file that mixes the two.
        columns=tuple(dict.fromkeys(SUPPORTER_COLUMNS + GHOST_COLUMNS)), required=("email",),
        allow_unknown=True, run=run_supporter_import, options=SUPPORTER_OPTIONS,
        nav="import_supporters",
        about="Supporters and daily-email subscribers, in this platform's columns or Ghost's "
              "member export as it is (README, “Importing supporters”). Their live Stripe "
              "subscriptions become plans here (nothing is charged). A subscription without "
              "the evidence of its confirmation is imported unconfirmed; nothing is sent "
              "unless you ask for the opt-in mail below."),
)}
