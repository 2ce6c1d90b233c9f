"""`POST /v1/dossiers` on SQLite and PostgreSQL: a duplicate person is a 409 naming both records, the job builds
the ZIP (run here the way a worker runs it), the same request is the same job until a record changes, and other
units see nothing."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest

from fixtures.dossier_unit import UnitYear, store_unit_year, unit_year
from formsvc.render.converter import get_converter
from formsvc.service.processing import run_job
from tests.servers import RedisServer
from tests.service_app import App, service_app

pytestmark = pytest.mark.slow  # dossier jobs build every document through LibreOffice

UNIT = "Trường THCS Hòa Bình"
OTHER = "Trường TH Tân Lập"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("dossier-api"), redis_server.url, database_url) as a:
        yield a
    get_converter().close()


@pytest.fixture(scope="module")
def stored(app: App) -> tuple[UnitYear, dict[str, list[str]]]:
    data = unit_year(UNIT, 2024, n=12, seed=5)
    return data, store_unit_year(data)


def test_dossier_job_builds_the_zip_and_follows_record_changes(app: App,
                                                              stored: tuple[UnitYear, dict[str, list[str]]]) -> None:
    data, ids = stored
    clerk = app.as_(app.key("clerk", UNIT))
    dup = ids[data.duplicate_id]

    r = app.client.post("/v1/dossiers", json={"year": 2024}, headers=clerk)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "dossier_duplicate_person" and all(i in body["message"] for i in dup)
    assert "hint" in body

    request = {"year": 2024, "exclude": [dup[1]], "staff": 20}
    r = app.client.post("/v1/dossiers", json=request, headers=clerk)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "dossier" and job["status"] == "queued" and job["result_url"] is None
    assert run_job(job["id"], 1) == "done"
    done = app.client.get(f"/v1/jobs/{job['id']}", headers=clerk).json()
    assert done["status"] == "done" and done["progress"]["pages_done"] == done["progress"]["pages_total"] == 6
    result = app.client.get(done["result_url"], headers=clerk)
    assert result.status_code == 200 and result.headers["content-type"] == "application/zip"
    assert "ho-so-2024-" in result.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(result.content)) as zf:
        names = zf.namelist()
        assert "01-bien-ban-hop-xet.pdf" in names and "02-quyet-dinh-cong-nhan.docx" in names
        assert len(names) == 13
        assert zf.read("00-bia-ho-so.pdf")[:5] == b"%PDF-"

    again = app.client.post("/v1/dossiers", json=request, headers=clerk)
    assert again.status_code == 200 and again.json()["id"] == job["id"] and again.json()["duplicate"] is True
    listed = app.client.get("/v1/jobs", params={"kind": "dossier"}, headers=clerk).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]

    # Approving a pending record changes the dossier: the same request is now a new job.
    pending = next(s for s in data.by_kind()["pending"])
    reviewer = app.as_(app.key("reviewer", UNIT))
    assert app.client.post(f"/v1/records/{ids[pending.subject_id][0]}/approve", headers=reviewer).status_code == 200
    newer = app.client.post("/v1/dossiers", json=request, headers=reviewer)
    assert newer.status_code == 202 and newer.json()["id"] != job["id"]


def test_dossier_requests_are_bounded_and_unit_scoped(app: App, stored: tuple[UnitYear, dict[str, list[str]]]) -> None:
    other = app.as_(app.key("clerk", OTHER))
    r = app.client.post("/v1/dossiers", json={"year": 2024, "unit": UNIT}, headers=other)
    assert r.status_code == 404 and UNIT not in r.text
    # Another unit's own dossier is empty of this unit's people (nothing leaks, nothing fails).
    r = app.client.post("/v1/dossiers", json={"year": 2024}, headers=other)
    assert r.status_code == 202
    assert run_job(r.json()["id"], 1) == "done"
    url = app.client.get(f"/v1/jobs/{r.json()['id']}", headers=other).json()["result_url"]
    z = app.client.get(url, headers=other).content
    with zipfile.ZipFile(io.BytesIO(z)) as zf:
        assert b'"reviewed": []' in zf.read("dossier.json")
    integration = app.as_(app.key("integration", UNIT))
    assert app.client.post("/v1/dossiers", json={"year": 2024}, headers=integration).status_code == 403
    admin = app.as_(app.key("admin"))
    assert app.client.post("/v1/dossiers", json={"year": 2024}, headers=admin).json()["code"] == "unit_required"
    assert app.client.post("/v1/dossiers", json={"year": 2024, "unit": "A\u0000B"}, headers=admin).status_code == 422
    for bad in ({"year": 1800}, {"year": 2024, "exclude": ["x" * 33]}, {"year": 2024, "exclude": ["../a"]},
                {"year": 2024, "criteria_set": "khong-co"}, {"year": 2024, "surprise": 1},
                {"year": 2024, "unit": "A\u0000B"}, {"year": 2024, "criteria_set": "a\u0000"}):
        r = app.client.post("/v1/dossiers", json=bad, headers=other)
        assert r.status_code in (404, 422), (bad, r.status_code, r.text)
