"""`otklik webhooks …`: add prints a generated secret once, list never shows it, bad input exits 2 clearly."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from otklik.adapters.db.models import EventLog, WebhookDelivery, WebhookEndpoint
from tests.fixtures.cli import in_db

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_home")


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from otklik.cli.main import app

    return runner.invoke(app, ["webhooks", *args])


def test_add_list_disable_enable_test_resend_remove() -> None:
    added = _cli("add", "--url", "https://erp.example.com/hooks", "--events", "order.confirmed,order.paid")
    assert added.exit_code == 0, added.output
    secret = added.output.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and len(secret) > 40

    async def stored(otk):  # type: ignore[no-untyped-def]
        async with otk.db.read() as session:
            row = await session.scalar(select(WebhookEndpoint))
        return row, otk.vault.decrypt(row.secret)

    row, plain = in_db(stored)
    assert plain == secret and secret not in row.secret and row.events == "order.confirmed,order.paid"
    given = _cli(
        "add", "--url", "http://127.0.0.1:5678/webhook/otklik", "--events", "*", "--secret", "s3cret-given-by-n8n!"
    )
    assert given.exit_code == 0 and "s3cret-given-by-n8n!" not in given.output
    listed = _cli("list")
    assert listed.exit_code == 0 and "https://erp.example.com/hooks" in listed.output and secret not in listed.output
    as_json = [json.loads(line) for line in _cli("list", "--json").output.splitlines()]
    assert [e["events"] for e in as_json] == [["order.confirmed", "order.paid"], ["*"]]
    assert _cli("disable", str(row.id)).exit_code == 0
    assert "disabled" in _cli("list").output
    assert _cli("test", str(row.id)).exit_code == 2  # disabled: refused
    assert _cli("enable", str(row.id)).exit_code == 0
    queued = _cli("test", str(row.id))
    assert queued.exit_code == 0, queued.output
    event_id = queued.output.strip().split()[-1]
    shown = _cli("deliveries")
    assert "webhook.test" in shown.output and event_id in shown.output
    resent = _cli("resend", event_id)
    assert resent.exit_code == 0 and "queued 1 delivery again" in resent.output
    assert _cli("remove", str(row.id)).exit_code == 0

    async def after(otk):  # type: ignore[no-untyped-def]
        async with otk.db.read() as session:
            left = (await session.execute(select(WebhookEndpoint.id))).scalars().all()
            deliveries = (await session.execute(select(WebhookDelivery.id))).scalars().all()
            kinds = (
                (await session.execute(select(EventLog.kind).where(EventLog.kind.like("webhook.%")))).scalars().all()
            )
        return list(left), list(deliveries), set(kinds)

    left, deliveries, kinds = in_db(after)
    assert len(left) == 1 and deliveries == []
    assert {
        "webhook.add",
        "webhook.disable",
        "webhook.enable",
        "webhook.test",
        "webhook.resend",
        "webhook.remove",
    } <= kinds


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "--url", "ftp://x.example/", "--events", "order.paid"], "http:// or https://"),
        (["add", "--url", "not a url", "--events", "order.paid"], "url"),
        (["add", "--url", "https://x.example/", "--events", "Order Paid"], "not an event type"),
        (["add", "--url", "https://x.example/", "--events", ",,,"], "events"),
        (["add", "--url", "https://x.example/", "--events", "order.paid", "--secret", "tiny"], "secret"),
        (["add", "--url", "https://x.example/" + "x" * 3000, "--events", "order.paid"], "2000"),
        (["resend", "banana"], "delivery id"),
        (["resend", "424242"], "no webhook delivery"),
        (["remove", "424242"], "no webhook endpoint"),
        (["disable", "424242"], "no webhook endpoint"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output

    async def count(otk):  # type: ignore[no-untyped-def]
        async with otk.db.read() as session:
            return len((await session.execute(select(WebhookEndpoint.id))).scalars().all())

    assert in_db(count) == 0


def test_ids_out_of_range_are_refused_by_the_parser() -> None:
    for bad in ("0", "-3", str(2**64), "abc"):
        assert _cli("remove", bad).exit_code == 2
