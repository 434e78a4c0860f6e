"""`otklik channels …`: add and list channel accounts (secrets are encrypted and shown masked)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from otklik.config import Settings
from otklik.core.errors import OtklikError

app = typer.Typer(help="Channel accounts: bots, numbers, marketplace keys, the API channel.", no_args_is_help=True)
add_app = typer.Typer(help="Add a channel account.", no_args_is_help=True)
app.add_typer(add_app, name="add")
console = Console()
err = Console(stderr=True)


def _run(coro_factory: object) -> None:
    try:
        asyncio.run(coro_factory)  # type: ignore[arg-type]
    except OtklikError as exc:
        err.print(f"[red]{exc.user_message}[/red]")
        raise typer.Exit(2) from None


@add_app.command("webhook")
def add_webhook(
    url: Annotated[str, typer.Option(help="where otklik POSTs outbound messages (https://…)")],
    name: Annotated[str, typer.Option(help="account name, used in /webhooks/api/<name>")] = "api",
    pack: Annotated[str, typer.Option(help="pack whose flows answer this channel")] = "care-ru",
    per_second: Annotated[float | None, typer.Option(min=0.1, help="outbound pace limit")] = None,
) -> None:
    """The API channel: signed JSON webhooks both ways. Prints the signing secret once."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.platform.channel_admin import check_webhook_url, connect_webhook

        check_webhook_url(url)  # a bad URL fails before anything starts
        otklik = Otklik.build(Settings())
        try:
            await otklik.start()
            added = await connect_webhook(otklik, url, name=name, pack=pack, actor="cli", per_second=per_second)
        finally:
            await otklik.close()
        console.print(f"added channel account #{added.id} '{added.name}'. Inbound: POST /webhooks/api/{added.name}")
        console.print(f"signing secret (shown once, keep it safe): {added.secret}")

    _run(go())


@add_app.command("telegram")
def add_telegram(
    token: Annotated[str, typer.Option(help="the bot token from @BotFather")],
    name: Annotated[str | None, typer.Option(help="account name (default: the bot's username)")] = None,
    pack: Annotated[str, typer.Option(help="pack whose flows answer this bot")] = "care-ru",
) -> None:
    """Add a Telegram bot: the token is checked with getMe, stored encrypted and shown masked."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.telegram.adapter import deep_link, mask_token
        from otklik.core.errors import Unavailable
        from otklik.platform.channel_admin import connect_telegram

        settings = Settings()
        otklik = Otklik.build(settings)
        try:
            await otklik.start()
            # the same use case as the admin's Settings page: checked, stored encrypted, audited
            account_id, username, created = await connect_telegram(otklik, token, name or "", pack, actor="cli")
        except Unavailable:
            err.print(f"[red]cannot reach the Telegram Bot API at {settings.telegram_api_url}[/red]")
            raise typer.Exit(2) from None
        except OtklikError as exc:
            err.print(f"[red]the token was refused: {exc.user_message}[/red]")
            raise typer.Exit(2) from None
        finally:
            await otklik.close()
        state = "added" if created else "already connected:"
        console.print(f"{state} Telegram bot @{username} as account #{account_id} (token {mask_token(token)})")
        console.print(f"buyers start here: {deep_link(username, 'care')}")

    _run(go())


@add_app.command("wildberries")
def add_wildberries(
    token: Annotated[str, typer.Option(help="a WB API token (Personal) with Feedbacks and Content categories")],
    name: Annotated[str, typer.Option(help="account name (one per seller cabinet)")] = "wildberries",
    pack: Annotated[str, typer.Option(help="pack whose review categories and templates apply")] = "care-ru",
    check: Annotated[bool, typer.Option(help="ping WB with the token before storing it")] = True,
) -> None:
    """Add a Wildberries API key: checked, stored encrypted, shown masked. `otklik wb sync` then caches the
    product cards and imports the reviews. The same use case as Settings → Channels in the admin."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.platform.channel_admin import check_wb_token, connect_wildberries

        settings = Settings()
        check_wb_token(token, "ru")  # a pasted non-token fails before anything starts
        otklik = Otklik.build(settings)
        try:
            await otklik.start()
            added = await connect_wildberries(otklik, token, name=name, pack=pack, actor="cli", lang="ru", check=check)
        finally:
            await otklik.close()
        console.print(f"added Wildberries account #{added.id} '{added.name}' (token {added.masked})")
        for warning in added.warnings:
            console.print(f"[yellow]{warning}[/yellow]")
        console.print("next: `otklik wb sync` caches the product cards and imports the reviews")

    _run(go())


@app.command("list")
def list_accounts() -> None:
    """Channel accounts with their kind, pack and masked secret."""

    async def go() -> None:
        from sqlalchemy import select

        from otklik.adapters.db.models import ChannelAccount
        from otklik.bootstrap import Otklik
        from otklik.platform.channel_accounts import mask

        otklik = Otklik.build(Settings())
        try:
            await otklik.start()
            async with otklik.db.read() as session:
                accounts = list((await session.execute(select(ChannelAccount).order_by(ChannelAccount.id))).scalars())
            table = Table("id", "name", "kind", "pack", "enabled", "secret")
            for a in accounts:
                secret = mask(otklik.vault.decrypt(a.secret)) if a.secret else "—"
                table.add_row(str(a.id), a.name, a.kind, a.pack, "yes" if a.enabled else "no", secret)
            console.print(table)
        finally:
            await otklik.close()

    _run(go())
