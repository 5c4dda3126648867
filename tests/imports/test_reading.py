"""The shared import machinery: reading a CSV safely, the report and errors.csv, the runner."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from app.audit import AuditEntry, record
from app.extensions import db
from app.imports import ImportFileError, Outcome, RowRefused, open_csv, run_import
from app.imports.reading import MAX_LINE_BYTES, inert, revive

COLUMNS = ("email", "name", "amount")
LIMIT = 10_000


def read(data: bytes, **options):
    options.setdefault("columns", COLUMNS)
    options.setdefault("max_bytes", LIMIT)
    return open_csv(io.BytesIO(data), **options)


def test_rows_come_with_their_line_numbers_and_formula_apostrophes_taken_off():
    data = (b'email,name,amount\r\n'
            b'a@example.org,"Noa\nLevi",10\r\n'
            b'\r\n'
            b"b@example.org,'=HYPERLINK(\"x\"),=1+1\r\n"
            b'c@example.org,\'-dash,5\r\n')
    rows = list(read(data))
    assert [r.line for r in rows] == [2, 5, 6]
    assert rows[0].cells == {"email": "a@example.org", "name": "Noa\nLevi", "amount": "10"}
    # The export's apostrophe comes off; a formula nobody neutralised stays plain text.
    assert rows[1].get("name") == '=HYPERLINK("x")'
    assert rows[1].get("amount") == "=1+1"
    assert rows[2].get("name") == "-dash"


def test_rows_of_blank_cells_are_skipped_and_cells_are_stripped_but_kept_as_written():
    data = (b'email,name,amount\n'
            b' , \t,\n'
            b'  a@example.org , Noa ,10\n'
            b',,\n'
            b"b@example.org,  '=1+1 ,'-2\n")
    rows = list(read(data))
    assert [r.line for r in rows] == [3, 5]
    assert rows[0].cells == {"email": "a@example.org", "name": "Noa", "amount": "10"}
    assert rows[0].values == ["  a@example.org ", " Noa ", "10"]  # for errors.csv
    # Only a cell starting with the apostrophe is a neutralised formula.
    assert rows[1].cells == {"email": "b@example.org", "name": "'=1+1", "amount": "-2"}
    assert rows[1].values == ["b@example.org", "  '=1+1 ", "-2"]


def test_inert_and_revive_undo_each_other():
    for text in ("=SUM(A1)", "+1", "-2", "@x", "plain", "'quoted", ""):
        assert revive(inert(text)) == text


def test_utf8_with_a_bom_and_header_case_and_spaces():
    rows = list(read(b"\xef\xbb\xbfEmail , NAME,amount\nn@example.org,N\xc3\xb6a,1\n"))
    assert rows[0].cells == {"email": "n@example.org", "name": "Nöa", "amount": "1"}


@pytest.mark.parametrize(("data", "message"), [
    (b"", "The file is empty"),
    (b"\n\n  \n", "The file is empty"),
    (b"email,name\n", "missing column amount"),
    (b"email,name,amount,colour,size\n", "unknown columns colour, size"),
    (b"email,name,amount,Email\n", "repeated column Email"),
    (b"email,name,amount\nx@example.org,Ren\xe9e,1\n",
     "Line 2 is not UTF-8 text (byte 0xe9 at character 18)"),
    ("email,name,amount\n".encode("utf-16"), "UTF-16"),
    (b"email,name,amount\nx,\"never closed\n", "Line 2 cannot be read as CSV"),
    (b"email,name,amount\n" + b"x" * (MAX_LINE_BYTES + 10), "Line 2 is longer than"),
])
def test_a_file_that_cannot_be_imported_is_refused_with_a_message(data, message):
    with pytest.raises(ImportFileError) as caught:
        with read(data, max_bytes=10 * MAX_LINE_BYTES) as csv_file:
            csv_file.scan()
    assert message in caught.value.message


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as out:
        out.truncate(1024 ** 3)  # a sparse 1 GB file: nothing is written to disk
    with pytest.raises(ImportFileError, match="1,073.7 MB: more than the 10,000 bytes"):
        open_csv(path, columns=COLUMNS, max_bytes=LIMIT)


def test_a_stream_of_unknown_size_stops_at_the_limit():
    class Unsized(io.BytesIO):
        def fileno(self):
            raise OSError

        def seek(self, *args):
            raise OSError

    data = b"email,name,amount\n" + b"a@example.org,A,1\n" * 1000
    with pytest.raises(ImportFileError, match="more than the 10,000 bytes"):
        list(open_csv(Unsized(data), columns=COLUMNS, max_bytes=LIMIT))


def test_missing_file_and_optional_and_unknown_columns(tmp_path):
    with pytest.raises(ImportFileError, match="There is no file"):
        open_csv(tmp_path / "nope.csv", columns=COLUMNS, max_bytes=LIMIT)
    rows = list(read(b"email,colour\na@example.org,red\n", required=["email"],
                     allow_unknown=True))
    assert rows[0].cells == {"email": "a@example.org"}
    assert rows[0].get("amount") == ""


def _audit_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "test.import"))


def _handler(row):
    """Writes an audit row per data row; refuses a row without an amount after writing."""
    record(actor_id=None, actor_label="test", action="test.import", target_type="row",
           target_id=row.get("email"))
    if not row.get("amount"):
        raise RowRefused("no amount")
    return Outcome.CREATE if row.get("name") else Outcome.UNCHANGED


FILE = (b'email,name,amount\n'
        b'a@example.org,A,1\n'
        b'b@example.org,,2\n'
        b'c@example.org,C,\n'
        b'A@example.org,A again,3\n'
        b'd@example.org,D,4,extra\n'
        b'e@example.org,"=cmd|x",\n')


@pytest.mark.parametrize("dry_run", [True, False])
def test_runner_counts_refuses_and_dedupes_the_same_way_dry_or_not(app, dry_run):
    progress = []
    with read(FILE) as csv_file:
        report = run_import(csv_file, _handler, dry_run=dry_run, commit=db.session.commit,
                            key=lambda row: row.get("email").lower() or None,
                            key_name="email", batch=2,
                            progress=lambda r, done, total: progress.append((done, total)))
    assert report.finished
    assert report.counts == {Outcome.CREATE: 1, Outcome.UPDATE: 0, Outcome.UNCHANGED: 1,
                             Outcome.REFUSED: 4}
    assert report.summary() == ("1 to create, 0 to update, 1 unchanged, 4 refused" if dry_run
                                else "1 created, 0 updated, 1 unchanged, 4 refused")
    assert [(r.line, r.reason) for r in report.refused] == [
        (4, "no amount"),
        (5, "a duplicate: the same email as line 2"),
        (6, "this row has 4 cells where the header has 3 columns"),
        (7, "no amount"),
    ]
    assert progress == [(2, 6), (4, 6), (6, 6), (6, 6)]
    # A refused row leaves nothing; a dry run leaves nothing at all.
    assert _audit_rows() == (0 if dry_run else 2)

    errors = list(csv.reader(io.StringIO(report.errors_csv())))
    assert errors[0] == ["email", "name", "amount", "error"]
    assert errors[1] == ["c@example.org", "C", "", "line 4: no amount"]
    assert errors[3] == ["d@example.org", "D", "4", "extra",
                         "line 6: this row has 4 cells where the header has 3 columns"]
    # A formula-looking cell goes back out inert, and reads back as the same text.
    assert errors[4][1] == "'=cmd|x"
    fixed = report.errors_csv().replace("c@example.org,C,", "c@example.org,C,9")
    again = list(read(fixed.encode(), allow_unknown=True))
    assert again[0].cells == {"email": "c@example.org", "name": "C", "amount": "9"}
    assert again[3].get("name") == "=cmd|x"


def test_a_report_survives_json(app):
    with read(FILE) as csv_file:
        report = run_import(csv_file, _handler, dry_run=True, commit=db.session.commit)
    from app.imports import ImportReport
    assert ImportReport.from_dict(report.to_dict()) == report


def test_a_header_without_rows_is_refused_and_an_unexpected_error_rolls_back(app):
    with pytest.raises(ImportFileError, match="no rows"):
        run_import(read(b"email,name,amount\n\n"), _handler, dry_run=False,
                   commit=db.session.commit)

    def broken(row):
        _handler(row)
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        run_import(read(FILE), broken, dry_run=False, commit=db.session.commit)
    assert _audit_rows() == 0
