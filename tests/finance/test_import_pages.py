"""The gift-history import from the staff pages: upload, the dry run's report (counts, refused
rows, errors.csv), confirm, the import done; a wrong file answered on the form; the size limit
of uploads; nothing sent, audited."""

from __future__ import annotations

import io
import re

import pytest
from redis import Redis
from sqlalchemy import func, select

from app import jobs
from app.audit import AuditEntry
from app.extensions import db
from app.giving.models import Gift
from app.imports.background import progress_key
from app.imports.models import ImportChunk, ImportRun
from app.mail import OutboundEmail
from app.staff.models import Role
from tests.conftest import migrated_url
from tests.finance.support import csv_bytes, row
from tests.support.staff import csrf_token, make_person, sign_in_as

GOOD_AND_BAD = csv_bytes(row(), row(gift_reference="ref-2", provider_reference="pi_2",
                                    currency="XYZ", donor_name="'=cmd"))


def upload(client, data: bytes, name: str = "gifts.csv"):
    return client.post("/staff/imports/gifts", data={
        "csrf_token": csrf_token(client), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data")


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_upload_check_confirm_import(app, client, finance):
    page = client.get("/staff/imports/gifts")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    assert 'aria-current="page">Import gifts</a>' in page.text

    response = upload(client, GOOD_AND_BAD)
    assert response.status_code == 302
    run_page = response.headers["Location"]
    run_id = int(re.search(r"/staff/imports/gifts/(\d+)$", run_page)[1])
    # No Redis: the dry run ran in the request, after its commit. Nothing was written.
    checked = client.get(run_page)
    assert checked.status_code == 200 and "Refresh" not in checked.headers
    assert "1 to create, 0 to update, 0 unchanged, 1 refused" in checked.text
    assert "<td>3</td><td>unknown currency &#39;XYZ&#39;</td>" in checked.text
    assert "Import 1 row now" in checked.text
    assert count(Gift) == 0

    errors = client.get(f"/staff/imports/gifts/{run_id}/errors.csv")
    assert errors.headers["Content-Disposition"] == 'attachment; filename="gifts.errors.csv"'
    lines = errors.text.splitlines()
    assert lines[0].endswith(",dispute_fee,dispute_fee_minor,error")
    assert ",'=cmd," in lines[1] and lines[1].endswith(",line 3: unknown currency 'XYZ'")

    confirmed = client.post(f"/staff/imports/gifts/{run_id}/confirm",
                            data={"csrf_token": csrf_token(client)})
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == run_page
    done = client.get(run_page)
    assert "Imported" in done.text and "1 created, 0 updated, 0 unchanged, 1 refused" in done.text
    assert "Import 1 row now" not in done.text
    assert count(Gift) == 1 and count(OutboundEmail) == 0
    assert count(ImportChunk) == 0  # the file is not kept once imported
    entry = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "finance.import")).one()
    assert entry.actor_label == "finance@levantwire.example"

    # Confirming again imports nothing twice; the upload page lists the run.
    client.post(f"/staff/imports/gifts/{run_id}/confirm", data={"csrf_token": csrf_token(client)})
    assert count(Gift) == 1
    assert "gifts.csv" in client.get("/staff/imports/gifts").text


def test_a_wrong_file_is_the_form_again_and_nothing_is_stored(app, client, finance):
    response = upload(client, b"email,name\nnoa@example.org,Noa\n", "supporters.csv")
    assert response.status_code == 422
    assert "missing columns gift_reference, paid_at_utc" in response.text
    empty = client.post("/staff/imports/gifts", data={"csrf_token": csrf_token(client)},
                        content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose the CSV file to import." in empty.text
    assert count(ImportRun) == 0


def test_a_file_refused_in_the_dry_run_says_why(app, client, finance):
    response = upload(client, csv_bytes(row()) + "Ren\u00e9e\n".encode("latin-1"))
    page = client.get(response.headers["Location"])
    assert "The file was not imported" in page.text and "Line 3 is not UTF-8 text" in page.text
    assert count(ImportChunk) == 0


def test_uploads_take_the_import_limit_not_the_forms(app, client, finance):
    # Larger than MAX_CONTENT_LENGTH (every other form's limit), within IMPORT_MAX_BYTES.
    # (Rows refused at once, in an unknown currency: the size is what is tested, quickly.)
    many = [row(gift_reference=f"ref-{i}", provider_reference=f"pi_{i}", currency="XYZ",
                donor_name="x" * 200, dedication_name="y" * 200, utm_source="z" * 100,
                utm_medium="z" * 100, utm_campaign="z" * 100) for i in range(1, 301)]
    data = csv_bytes(*many)
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]
    response = upload(client, data)
    assert response.status_code == 302, response.text[:2000]
    assert "0 to create, 0 to update, 0 unchanged, 300 refused" in \
        client.get(response.headers["Location"]).text

    app.config["IMPORT_MAX_BYTES"] = 100_000
    too_big = upload(client, data)
    assert too_big.status_code == 413
    assert count(ImportRun) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_with_a_worker_the_page_refreshes_with_the_progress(request, make_app, backend,
                                                              redis_url):
    app = make_app(migrated_url(request, backend, f"import_pages_{backend}"),
                   REDIS_URL=redis_url)
    with app.app_context():
        client = app.test_client()
        sign_in_as(client, make_person("finance@levantwire.example", roles=(Role.FINANCE,)))
        rows = [row(gift_reference=f"ref-{i}", provider_reference=f"pi_{i}", receipt_number="")
                for i in range(1, 8)]
        run_page = upload(client, csv_bytes(*rows)).headers["Location"]
        run_id = int(run_page.rsplit("/", 1)[1])
        waiting = client.get(run_page)
        assert waiting.headers["Refresh"] == "2" and "Checking the file" in waiting.text
        redis = Redis.from_url(redis_url)
        redis.set(progress_key(run_id), "3/7")  # as the job reports it after a batch
        assert "3 of 7 rows" in client.get(run_page).text

        db.session.commit()  # this test's session holds no transaction the worker waits for
        jobs.worker(app).work(burst=True)
        assert redis.get(progress_key(run_id)) == b"7/7"
        checked = client.get(run_page)
        assert "Refresh" not in checked.headers and "7 to create" in checked.text
        client.post(f"/staff/imports/gifts/{run_id}/confirm",
                    data={"csrf_token": csrf_token(client)})
        assert "Importing" in client.get(run_page).text and count(Gift) == 0
        db.session.commit()
        jobs.worker(app).work(burst=True)
        assert "7 created" in client.get(run_page).text and count(Gift) == 7
        db.session.remove()


def test_an_upload_forgets_the_files_and_refused_rows_of_old_imports(app, client, finance):
    from datetime import timedelta

    from app.db import utcnow

    old_page = upload(client, GOOD_AND_BAD).headers["Location"]
    recent_page = upload(client, GOOD_AND_BAD).headers["Location"]
    old = db.session.get(ImportRun, int(old_page.rsplit("/", 1)[1]))
    old.created_at = utcnow() - timedelta(days=app.config["IMPORT_KEEP_DAYS"] + 1)
    db.session.add(ImportChunk(run_id=old.id, position=9, data=b"left by a stuck run"))
    db.session.commit()

    upload(client, GOOD_AND_BAD)
    db.session.expire_all()
    kept = db.session.scalars(select(ImportChunk.run_id).distinct()).all()
    assert old.id not in kept
    page = client.get(old_page).text
    assert "1 to create, 0 to update, 0 unchanged, 1 refused" in page  # the counts stay
    assert "unknown currency" not in page and "<td>3</td>" not in page
    assert "unknown currency" in client.get(recent_page).text
