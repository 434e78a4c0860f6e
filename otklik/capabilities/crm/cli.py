"""`otklik crm add bitrix24|amocrm`, `crm test`, `crm list`, `crm mapping`, `crm failures`, `crm retry`,
`crm remove`: the CRM hand-over (docs/crm.md). Bad input is one clear line and exit status 2; secrets are
never printed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from otklik.core.errors import OtklikError

T = TypeVar("T")
app = typer.Typer(help="CRM hand-over: Bitrix24 and amoCRM / Kommo.", no_args_is_help=True)
add_app = typer.Typer(help="Connect a CRM.", no_args_is_help=True)
app.add_typer(add_app, name="add")


def _in_db(work: Callable[[Any], Awaitable[T]]) -> T:
    from otklik.bootstrap import run_with_app  # here: `otklik --help` imports no database

    try:
        return run_with_app(work)
    except OtklikError as exc:
        typer.echo(f"error: {exc.user_message}", err=True)
        raise typer.Exit(2) from None


NameOpt = Annotated[str | None, typer.Option("--name", help="a name for it (default: the portal's host)")]


@add_app.command("bitrix24")
def add_bitrix24(
    webhook_url: Annotated[str, typer.Option("--webhook-url", help="https://<portal>/rest/<user>/<code>/")],
    name: NameOpt = None,
) -> None:
    """Connect a Bitrix24 portal through its inbound webhook (scope crm). The URL holds a secret code: it is
    stored encrypted and never shown again."""

    async def go(otk: Any) -> int:
        from otklik.capabilities.crm.service import add_bitrix24

        return await add_bitrix24(otk.db, otk.vault, webhook_url, name=name, actor="cli")

    typer.echo(f"added CRM connection {_in_db(go)} (bitrix24); check it with: otklik crm test")


@add_app.command("amocrm")
def add_amocrm(
    subdomain: Annotated[str, typer.Option("--subdomain", help="<subdomain>.amocrm.ru")],
    token: Annotated[str, typer.Option("--token", help="a long-lived token, or the OAuth access token")],
    refresh_token: Annotated[str | None, typer.Option("--refresh-token", help="OAuth: refreshed on a 401")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", help="OAuth: the integration's id")] = None,
    client_secret: Annotated[str | None, typer.Option("--client-secret", help="OAuth: its secret")] = None,
    redirect_uri: Annotated[str | None, typer.Option("--redirect-uri", help="OAuth: its redirect URI")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="instead of the subdomain (Kommo)")] = None,
    name: NameOpt = None,
) -> None:
    """Connect an amoCRM / Kommo account. Tokens are stored encrypted and never shown again."""

    async def go(otk: Any) -> int:
        from otklik.capabilities.crm.service import add_amocrm

        return await add_amocrm(
            otk.db, otk.vault, subdomain=subdomain, token=token, refresh_token=refresh_token, client_id=client_id,
            client_secret=client_secret, redirect_uri=redirect_uri, base_url=base_url, name=name, actor="cli",
        )  # fmt: skip

    typer.echo(f"added CRM connection {_in_db(go)} (amocrm); check it with: otklik crm test")


@app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """Connections: id, kind, state, name, host, last error (never a secret)."""

    async def go(otk: Any) -> Any:
        from otklik.capabilities.crm.service import list_connections

        return await list_connections(otk.db)

    for c in _in_db(go):
        if as_json:
            item = {"id": c.id, "kind": c.kind, "name": c.name, "target": c.target, "active": c.active,
                    "mapping": c.mapping, "last_error": c.last_error}  # fmt: skip
            typer.echo(json.dumps(item, ensure_ascii=False))
        else:
            state = "active" if c.active else "disabled"
            typer.echo(f"{c.id}\t{c.kind}\t{state}\t{c.name}\t{c.target}\t{c.last_error or '-'}")


@app.command("test")
def test_command(
    connection: Annotated[int | None, typer.Argument(help="a connection id; default: all")] = None,
) -> None:
    """One authenticated call to each CRM and its mapping checked; exit status 1 if any fails."""

    async def go(otk: Any) -> list[tuple[int, bool, str]]:
        from otklik.capabilities.crm.service import list_connections, test_connection

        ids = [connection] if connection is not None else [c.id for c in await list_connections(otk.db)]
        return [(i, *(await test_connection(otk.db, otk.vault, i))) for i in ids]

    results = _in_db(go)
    if not results:
        typer.echo("no CRM connected: otklik crm add bitrix24 --webhook-url … | otklik crm add amocrm …", err=True)
        raise typer.Exit(1)
    for i, ok, message in results:
        typer.echo(f"{i}\t{'ok' if ok else 'FAILED'}\t{message}")
    if not all(ok for _, ok, _ in results):
        raise typer.Exit(1)


@app.command("mapping")
def mapping_command(
    connection: Annotated[int, typer.Argument(help="the connection id")],
    values: Annotated[
        list[str],
        typer.Argument(
            help="key=value: field_service=UF_CRM_1, status_cancelled=JUNK, "
            "source_telegram=OTHER, pipeline_id=5, tags=a,b …"
        ),
    ],
) -> None:
    """Set the mapping (replaces it). Keys as on Settings → CRM (docs/crm.md)."""
    form: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            typer.echo(f"error: {item[:60]!r} is not key=value", err=True)
            raise typer.Exit(2)
        form[key.strip()] = value

    async def go(otk: Any) -> dict[str, Any]:
        from otklik.capabilities.crm.service import set_mapping

        return await set_mapping(otk.db, connection, form, actor="cli")

    typer.echo(json.dumps(_in_db(go), ensure_ascii=False))


@app.command("failures")
def failures_command(limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20) -> None:
    """Hand-overs that failed or are being retried: delivery id, status, attempts, event, last error."""

    async def go(otk: Any) -> Any:
        from otklik.capabilities.crm.admin import failures

        return await failures(otk, limit)

    for d in _in_db(go):
        typer.echo(f"{d.id}\t{d.status}\t{d.attempts}\t{d.type}\t{d.subject or '-'}\t{d.last_error or '-'}")


@app.command("retry")
def retry_command(delivery: Annotated[str, typer.Argument(help="a delivery id (otklik crm failures)")]) -> None:
    """Hand a failed delivery over again now (after fixing the mapping or the token)."""

    async def go(otk: Any) -> int:
        from otklik.capabilities.crm.admin import retry

        return await retry(otk, delivery, actor="cli")

    typer.echo(f"queued {_in_db(go)} delivery")


@app.command("remove")
def remove_command(connection: Annotated[int, typer.Argument(help="the connection id")]) -> None:
    """Forget a connection and its links (records in the CRM stay)."""

    async def go(otk: Any) -> None:
        from otklik.capabilities.crm.service import remove

        await remove(otk.db, otk.vault, connection, actor="cli")

    _in_db(go)
    typer.echo(f"removed CRM connection {connection}")
