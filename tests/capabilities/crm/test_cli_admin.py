"""`otklik crm …` and /admin/crm: add, list, mapping, test, failures and retry; bad input is one clear line
(exit 2) or the page with the message and nothing stored; roles enforced."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from otklik.bootstrap import Otklik
from otklik.capabilities.crm import service
from otklik.capabilities.crm.sync import CrmSync
from otklik.cli.main import app as cli
from otklik.clock import utcnow
from otklik.platform.users import Role
from otklik.testing.fake_bitrix24 import FakeBitrix24Server
from tests.capabilities.crm.events import emit_event, lead
from tests.fixtures.cli import in_db

runner = CliRunner()


def test_cli_add_list_mapping_and_bad_input(cli_home: Path) -> None:
    bad = runner.invoke(cli, ["crm", "add", "bitrix24", "--webhook-url", "http://evil.example/rest/1/x/"])
    assert bad.exit_code == 2 and "webhook URL: must start with https://" in bad.output
    added = runner.invoke(cli, ["crm", "add", "bitrix24", "--webhook-url", "https://salon.bitrix24.ru/rest/1/code42/"])
    assert added.exit_code == 0, added.output
    assert "code42" not in added.output
    amo = runner.invoke(cli, ["crm", "add", "amocrm", "--subdomain", "salon", "--token", "tok-123"])
    assert amo.exit_code == 0, amo.output
    listed = runner.invoke(cli, ["crm", "list", "--json"])
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["kind"], r["target"]) for r in rows] == [
        ("bitrix24", "salon.bitrix24.ru"),
        ("amocrm", "https://salon.amocrm.ru"),
    ]
    assert "code42" not in listed.output and "tok-123" not in listed.output
    mapped = runner.invoke(
        cli, ["crm", "mapping", str(rows[0]["id"]), "field_service=UF_CRM_7", "status_cancelled=JUNK"]
    )
    assert mapped.exit_code == 0 and json.loads(mapped.output)["fields"] == {"service": "UF_CRM_7"}
    refused = runner.invoke(cli, ["crm", "mapping", str(rows[0]["id"]), "field_service=NAME"])
    assert refused.exit_code == 2 and "UF_CRM_" in refused.output
    assert runner.invoke(cli, ["crm", "mapping", "999", "field_service=UF_CRM_7"]).exit_code == 2
    assert runner.invoke(cli, ["crm", "retry", "abc"]).exit_code == 2
    views = in_db(lambda otk: service.list_connections(otk.db))
    assert views[0].mapping == {"fields": {"service": "UF_CRM_7"}, "statuses": {"cancelled": "JUNK"}}


def test_cli_test_reports_an_unreachable_crm(cli_home: Path) -> None:
    assert runner.invoke(cli, ["crm", "test"]).exit_code == 1  # nothing connected
    runner.invoke(cli, ["crm", "add", "amocrm", "--subdomain", "x", "--base-url", "http://127.0.0.1:9", "--token", "t"])
    result = runner.invoke(cli, ["crm", "test"])
    assert result.exit_code == 1 and "FAILED" in result.output and "amoCRM unreachable" in result.output


async def test_admin_page_add_mapping_failures_and_retry(otklik: Otklik, as_role, anon: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    assert (await anon.get("/admin/crm")).status_code in (303, 401)
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/crm")).status_code == 403
    assert (
        await operator.post("/admin/crm/bitrix24", {"webhook_url": "https://a.bitrix24.ru/rest/1/x/"})
    ).status_code == 403
    owner = await as_role(Role.OWNER)
    no_csrf = await owner.http.post("/admin/crm/bitrix24", data={"webhook_url": "https://a.bitrix24.ru/rest/1/x/"})
    assert no_csrf.status_code in (400, 403)
    assert await service.list_connections(otklik.db) == []

    bad = await owner.post(
        "/admin/crm/bitrix24", {"webhook_url": "https://x/<script>alert(1)</script>", "name": "<b>n</b>"}
    )
    assert bad.status_code == 422 and "<script>alert" not in bad.text and "webhook URL" in bad.text
    async with FakeBitrix24Server() as fake:
        fake.add_field("UF_CRM_SERVICE")
        added = await owner.post("/admin/crm/bitrix24", {"webhook_url": fake.webhook_url, "name": "Салон"})
        assert added.status_code == 303
        [view] = await service.list_connections(otklik.db)
        page = await owner.http.get("/admin/crm")
        assert "Салон" in page.text and fake.code not in page.text  # the secret code is never shown

        bad_map = await owner.post(f"/admin/crm/{view.id}/mapping", {"field_service": "<img src=x>"})
        assert bad_map.status_code == 422 and "<img src=x>" not in bad_map.text
        ok_map = await owner.post(f"/admin/crm/{view.id}/mapping", {"field_service": "UF_CRM_GONE"})
        assert ok_map.status_code == 303

        tested = await owner.post(f"/admin/crm/{view.id}/test")
        assert "UF_CRM_GONE" in tested.text and 'data-testid="tested"' in tested.text

        now = utcnow()
        await emit_event(otklik, "lead.created", lead(5), now)
        sync = CrmSync(otklik.db, otklik.vault, otklik.settings)
        await sync.run_once(now)
        page = await owner.http.get("/admin/crm")
        assert "no lead field UF_CRM_GONE" in page.text and 'data-testid="retry-' in page.text
        [failure] = await __import__("otklik.capabilities.crm.admin", fromlist=["failures"]).failures(otklik)

        fake.add_field("UF_CRM_GONE")
        assert (await owner.post(f"/admin/crm/deliveries/{failure.id}/retry")).status_code == 303
        assert (await owner.post("/admin/crm/deliveries/999999/retry")).status_code == 404
        await sync.run_once(now + timedelta(seconds=1))
        assert len(fake.state.leads) == 1
        assert "no lead field" not in (await owner.http.get("/admin/crm")).text
