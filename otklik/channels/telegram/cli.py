"""`otklik telegram …` and `otklik qr`: webhooks and insert-card QR codes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from otklik.config import Settings
from otklik.core.errors import OtklikError
from otklik.platform.clikit import run_command

app = typer.Typer(help="Telegram bots: webhooks.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


async def _account(name: str | None) -> tuple[int, str, str, str]:
    """(id, username, token, webhook secret) of a Telegram account (the only one when name is None)."""
    from sqlalchemy import select

    from otklik.adapters.db.models import ChannelAccount
    from otklik.bootstrap import Otklik

    otklik = Otklik.build(Settings())
    try:
        await otklik.start()
        async with otklik.db.read() as session:
            query = select(ChannelAccount).where(ChannelAccount.kind == "telegram")
            if name:
                query = query.where(ChannelAccount.name == name)
            accounts = list((await session.execute(query)).scalars())
        if len(accounts) != 1:
            which = f"named {name!r}" if name else "(several exist: pass --account)" if accounts else ""
            err.print(f"[red]no single Telegram account {which}; add one with `otklik channels add telegram`[/red]")
            raise typer.Exit(2)
        account = accounts[0]
        return (
            int(account.id),
            str(account.config.get("username", "")),
            otklik.vault.decrypt(account.secret or ""),
            otklik.vault.decrypt(account.config["webhook_secret"]),
        )
    finally:
        await otklik.close()


@app.command("set-webhook")
def set_webhook(
    url: Annotated[str, typer.Option(help="public https base URL of this install, e.g. https://bot.example.com")],
    account: Annotated[str | None, typer.Option(help="account name (default: the only Telegram account)")] = None,
) -> None:
    """Register `<url>/webhooks/telegram/<id>` with a secret token (then set OTKLIK_PUBLIC_URL)."""
    if not url.startswith("https://"):
        err.print("[red]Telegram only delivers webhooks to https:// URLs[/red]")
        raise typer.Exit(2)

    async def go() -> None:
        from otklik.channels.telegram.adapter import make_bot

        account_id, username, token, secret = await _account(account)
        bot = make_bot(token, Settings().telegram_api_url)
        try:
            hook = f"{url.rstrip('/')}/webhooks/telegram/{account_id}"
            await bot.set_webhook(hook, secret_token=secret, drop_pending_updates=False)
        finally:
            await bot.session.close()
        console.print(f"@{username}: webhook set to {hook}")

    asyncio.run(go())


def qr(
    payload: Annotated[str, typer.Option(help="deep-link payload, e.g. a campaign code (A-Z a-z 0-9 _ -, ≤ 64)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="card.png or card.svg")],
    account: Annotated[str | None, typer.Option(help="Telegram account name (default: the only one)")] = None,
    caption: Annotated[str | None, typer.Option(help="text printed under the code (PNG)")] = None,
) -> None:
    """Write a print-ready QR code for insert cards that opens the bot with the payload."""
    from otklik.adapters.qr import write_qr
    from otklik.channels.telegram.adapter import deep_link

    if output.suffix.lower() not in (".png", ".svg"):
        err.print("[red]--output must end in .png or .svg[/red]")
        raise typer.Exit(2)
    _account_id, username, _token, _secret = asyncio.run(_account(account))
    try:
        link = deep_link(username, payload)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    write_qr(link, output, caption=caption)
    console.print(f"{output}: {link}")


def add(
    token: Annotated[str, typer.Option(help="the bot token from @BotFather")],
    name: Annotated[str | None, typer.Option(help="account name (default: the bot's username)")] = None,
    pack: Annotated[str, typer.Option(help="pack whose flows answer this bot")] = "care-ru",
) -> None:
    """Add a Telegram bot: the token is checked with getMe, stored encrypted and shown masked."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.telegram.adapter import deep_link, mask_token
        from otklik.channels.telegram.admin import connect_telegram
        from otklik.core.errors import Unavailable

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

    run_command(go())
