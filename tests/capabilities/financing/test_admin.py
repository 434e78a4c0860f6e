"""`/admin/financing`: rates tables saved, versioned, rolled back, audited, exported; bad input saves nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.financing import service
from otklik.capabilities.financing.models import rate_tables, rate_versions
from otklik.capabilities.financing.rules import parse_table
from otklik.platform.users import Role
from tests.capabilities.financing.tables import ISSUE_JSON, ISSUE_YAML


async def _counts(otklik: Otklik) -> tuple[int, int, int]:
    async with otklik.db.read() as session:
        tables = await session.scalar(select(func.count()).select_from(rate_tables))
        versions = await session.scalar(select(func.count()).select_from(rate_versions))
        audits = await session.scalar(select(func.count()).where(EventLog.kind.like("financing.%")))
    return int(tables or 0), int(versions or 0), int(audits or 0)


async def test_create_edit_rollback_default_export(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    created = await owner.post("/admin/financing", {"name": "visa", "source": ISSUE_YAML})
    assert created.status_code == 303 and created.headers["location"] == "/admin/financing/visa?saved=1"
    page = await owner.http.get("/admin/financing/visa")
    assert page.status_code == 200 and 'data-testid="default"' in page.text  # the first table is the default

    edited = ISSUE_YAML.replace("tna: 48", "tna: 50")
    assert (await owner.post("/admin/financing/visa", {"source": edited})).status_code == 303
    async with otklik.db.read() as session:
        stored = await service.load(service.session_fetch(session))
    assert stored is not None and stored.version == 2 and stored.table.plans[1].tna == 50

    assert (await owner.post("/admin/financing/visa/rollback", {"version": "1"})).status_code == 303
    async with otklik.db.read() as session:
        stored = await service.load(service.session_fetch(session), "visa")
        versions = await service.history(session, "visa")
    assert stored is not None and stored.version == 3 and stored.source == ISSUE_YAML
    assert [v["note"] for v in versions] == ["rollback to 1", "edit", "import"]

    # a JSON import is the same table; a second table can become the default
    assert (await owner.post("/admin/financing", {"name": "mastercard", "source": ISSUE_JSON})).status_code == 303
    assert (await owner.post("/admin/financing/mastercard/default")).status_code == 303
    async with otklik.db.read() as session:
        default = await service.load(service.session_fetch(session))
    assert default is not None and default.name == "mastercard" and default.table == parse_table(ISSUE_YAML)

    yaml_file = await owner.http.get("/admin/financing/visa/export.yaml")
    assert yaml_file.status_code == 200 and "attachment" in yaml_file.headers["content-disposition"]
    assert parse_table(yaml_file.text) == parse_table(ISSUE_YAML) and "# percent of the interest" in yaml_file.text
    json_file = await owner.http.get("/admin/financing/visa/export.json")
    assert parse_table(json_file.text) == parse_table(ISSUE_YAML) and json.loads(json_file.text)["plans"][2]["tna"]

    async with otklik.db.read() as session:
        kinds = (await session.execute(select(EventLog.kind, EventLog.subject_id, EventLog.actor)
                                       .where(EventLog.kind.like("financing.%")).order_by(EventLog.id))).all()  # fmt: skip
    assert [k for k, _, _ in kinds] == [
        "financing.table_create", "financing.table_save", "financing.table_save",
        "financing.table_create", "financing.table_default",
    ]  # fmt: skip
    assert all(actor.endswith("owner") or "owner" in actor for _, _, actor in kinds)
    audit_page = await owner.http.get("/admin/audit")
    assert "Rates table changed" in audit_page.text

    preview = await owner.http.get("/admin/financing/visa?amount=150000")
    assert "29401.58" in preview.text and "29401.57" in preview.text


async def test_upload_a_file(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    response = await owner.post(
        "/admin/financing",
        {"name": "amex", "source": ""},
        files={"file": ("rates.json", ISSUE_JSON.encode(), "application/json")},
    )
    assert response.status_code == 303
    assert await _counts(otklik) == (1, 1, 1)


HOSTILE = [
    ("currency: ARS\nplans: [\n", "YAML syntax error"),
    (ISSUE_YAML.replace("{from: 4, to: 6", "{from: 2, to: 6"), "overlap"),
    (ISSUE_YAML.replace("tna: 48", "tna: -48").replace("coefficient: 1.95", "coefficient: 0.5"), "cannot be negative"),
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("<script>alert(1)</script>: 1\n", "unknown key"),
    ("a: " + "[" * 100 + "]" * 100, "nested deeper"),
    ("x: \x07\n", "control character"),
]


@pytest.mark.parametrize(("source", "expected"), HOSTILE)
async def test_bad_text_saves_nothing(otklik: Otklik, as_role, source: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    response = await owner.post("/admin/financing", {"name": "visa", "source": source})
    assert response.status_code == 422, response.text[:300]
    assert expected in response.text and 'data-testid="errors"' in response.text
    assert "<script>alert" not in response.text  # echoed escaped
    assert await _counts(otklik) == (0, 0, 0)
    # and on an existing table: no new version
    assert (await owner.post("/admin/financing", {"name": "visa", "source": ISSUE_YAML})).status_code == 303
    response = await owner.post("/admin/financing/visa", {"source": source})
    assert response.status_code == 422 and expected in response.text
    assert await _counts(otklik) == (1, 1, 1)


async def test_every_error_is_shown(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    bad = ISSUE_YAML.replace("tna: 48", "tna: cuarenta").replace("coefficient: 1.95", "coefficient: 0.9")
    response = await owner.post("/admin/financing", {"name": "visa", "source": bad.replace("currency: ARS\n", "")})
    assert response.status_code == 422
    for expected in ("currency: missing", "plans[1].tna: must be a number", "plans[3].coefficient: must be at least 1"):
        assert expected in response.text
    assert await _counts(otklik) == (0, 0, 0)


async def test_oversized_upload_and_bad_names(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    big = b"# " + b"x" * 200_000 + b"\n" + ISSUE_YAML.encode()
    response = await owner.post("/admin/financing", {"name": "visa"}, files={"file": ("big.yaml", big, "text/yaml")})
    assert response.status_code == 413 and "larger than" in response.text
    binary = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    response = await owner.post("/admin/financing", {"name": "visa"}, files={"file": ("x.yaml", binary, "text/yaml")})
    assert response.status_code == 422
    for name in ("", "Visa Card", "../etc", "x" * 41, "<b>"):
        response = await owner.post("/admin/financing", {"name": name, "source": ISSUE_YAML})
        assert response.status_code == 422, name
    assert await _counts(otklik) == (0, 0, 0)


async def test_same_text_twice_is_not_a_new_version(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    await owner.post("/admin/financing", {"name": "visa", "source": ISSUE_YAML})
    assert (await owner.post("/admin/financing/visa", {"source": ISSUE_YAML})).status_code == 409
    assert (await owner.post("/admin/financing", {"name": "visa", "source": ISSUE_YAML})).status_code == 409
    assert (await owner.post("/admin/financing/visa/rollback", {"version": "7"})).status_code == 404
    assert (await owner.post("/admin/financing/nope/default")).status_code == 404
    assert (await owner.http.get("/admin/financing/nope")).status_code == 404
    assert await _counts(otklik) == (1, 1, 1)


async def test_permission_and_csrf(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/financing", headers={"accept": "text/html"})).status_code == 403
    assert (await operator.post("/admin/financing", {"name": "visa", "source": ISSUE_YAML})).status_code == 403
    admin = await as_role(Role.ADMIN)
    forged = await admin.http.post("/admin/financing", data={"name": "visa", "source": ISSUE_YAML})
    assert forged.status_code == 403
    assert await _counts(otklik) == (0, 0, 0)
    assert 'data-nav="/admin/financing"' in (await admin.http.get("/admin")).text
    assert 'data-nav="/admin/financing"' not in (await operator.http.get("/admin")).text
