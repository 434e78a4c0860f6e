"""`otklik api-tokens create|list|revoke`: bearer tokens of the REST API (`/api/v1/…`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from otklik.cli.users import _run

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

app = typer.Typer(help="API tokens of the REST API: create (shown once), list, revoke.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="who or what uses it, e.g. 'shop-site'")],
    scopes: Annotated[str, typer.Option("--scopes", help="comma-separated, e.g. financing,orders")],
) -> None:
    """Create a token and print it once (only its hash is kept)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.apitokens import create_token

        return await create_token(otk.db, name, scopes, actor="cli")

    _id, token = _run(go)
    typer.echo(f"created {name.strip()}; the token (shown once, keep it secret):")
    typer.echo(token)


@app.command("list")
def list_tokens() -> None:
    """Tokens with scopes, creation, last use and revocation (never the token)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.apitokens import list_tokens

        return await list_tokens(otk.db)

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    for row in _run(go):
        state = f"revoked {when(row.revoked_at)}" if row.revoked_at else "active"
        typer.echo(
            f"{row.name}\t{row.prefix}…\t{row.scopes}\tcreated {when(row.created_at)}\tused {when(row.last_used_at)}\t{state}"
        )


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="the token's name")]) -> None:
    """Revoke a token: every request with it is refused from now on."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.apitokens import revoke_token

        await revoke_token(otk.db, name, actor="cli")

    _run(go)
    typer.echo(f"revoked {name.strip()}")
