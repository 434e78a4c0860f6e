"""`otklik webhooks add|list|deliveries|disable|enable|remove|resend|test`: signed event webhooks
(docs/webhooks.md). Bad input is one clear line and exit status 2."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from otklik.cli.users import _run

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

app = typer.Typer(help="Signed event webhooks: endpoints, deliveries, resend.", no_args_is_help=True)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@app.command("add")
def add(
    url: Annotated[str, typer.Option("--url", help="http(s) URL that receives the POSTs")],
    events: Annotated[str, typer.Option("--events", help="comma-separated: order.confirmed,order.paid; order.*; *")],
    secret: Annotated[
        str | None, typer.Option("--secret", help="signing secret (16-200 characters); default: generated")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="a note: who receives it")] = "",
) -> None:
    """Add an endpoint. A generated signing secret is printed once (only an encrypted copy is kept)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import add_endpoint

        return await add_endpoint(otk.db, otk.vault, url, events, secret=secret, description=description, actor="cli")

    added = _run(go)
    typer.echo(f"added webhook {added.id}: {added.url} ({','.join(added.events)})")
    if added.generated:
        typer.echo("signing secret (shown once, keep it secret):")
        typer.echo(added.secret)


@app.command("list")
def list_endpoints(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """Endpoints: id, state, events, URL (never the secret)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import list_endpoints

        return await list_endpoints(otk.db)

    for row in _run(go):
        if as_json:
            item = {"id": row.id, "url": row.url, "events": row.events.split(","), "active": row.active,
                    "description": row.description, "disabled_reason": row.disabled_reason,
                    "created_at": row.created_at.isoformat()}  # fmt: skip
            typer.echo(json.dumps(item, ensure_ascii=False))
            continue
        state = "active" if row.active else f"disabled ({row.disabled_reason or '-'})"
        typer.echo(f"{row.id}\t{state}\t{row.events}\t{row.url}\t{row.description}")


@app.command("deliveries")
def deliveries(
    problems: Annotated[bool, typer.Option("--problems", help="only failing, failed and given-up ones")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
) -> None:
    """Recent deliveries, newest first: id, status, attempts, event type and id, last answer."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import list_deliveries

        return await list_deliveries(otk.db, problems=problems, limit=limit)

    for d in _run(go):
        last = d.last_error or (str(d.last_status_code) if d.last_status_code else "-")
        typer.echo(f"{d.id}\t{d.status}\t{d.attempts}\t{d.type}\t{d.event_id}\t{_when(d.created_at)}\t{last}")


def _set(endpoint_id: int, active: bool) -> None:
    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import set_active

        await set_active(otk.db, endpoint_id, active, actor="cli")

    _run(go)


@app.command("disable")
def disable(endpoint_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="the endpoint's id")]) -> None:
    """Stop sending to an endpoint (its pending deliveries wait; nothing new is queued for it)."""
    _set(endpoint_id, False)
    typer.echo(f"disabled webhook {endpoint_id}")


@app.command("enable")
def enable(endpoint_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="the endpoint's id")]) -> None:
    """Send to an endpoint again (waiting deliveries go out first)."""
    _set(endpoint_id, True)
    typer.echo(f"enabled webhook {endpoint_id}")


@app.command("remove")
def remove(endpoint_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="the endpoint's id")]) -> None:
    """Delete an endpoint and its deliveries."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import remove_endpoint

        await remove_endpoint(otk.db, endpoint_id, actor="cli")

    _run(go)
    typer.echo(f"removed webhook {endpoint_id}")


@app.command("resend")
def resend(
    ref: Annotated[str, typer.Argument(help="a delivery id, or an event id (UUID) for all its deliveries")],
) -> None:
    """Send again, with the same event id, at once and with a fresh retry schedule."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import resend

        return await resend(otk.db, ref, actor="cli", retry_hours=otk.settings.webhook_retry_hours)

    count = _run(go)
    typer.echo(f"queued {count} deliver{'y' if count == 1 else 'ies'} again")


@app.command("test")
def test(endpoint_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1, help="the endpoint's id")]) -> None:
    """Queue a `webhook.test` event to one endpoint (the worker sends it)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.webhooks.service import send_test

        return await send_test(otk.db, endpoint_id, actor="cli")

    typer.echo(f"queued test event {_run(go)}")
