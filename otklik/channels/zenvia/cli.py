"""`otklik channels add zenvia`: the admin's connect use case from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from otklik.config import Settings
from otklik.core.errors import OtklikError
from otklik.platform.clikit import run_command

console = Console()
err = Console(stderr=True)


def add(
    token: Annotated[str, typer.Option(help="Zenvia API token (Zenvia → Developers → Tokens & Webhooks)")],
    sender: Annotated[str, typer.Option("--from", help="the WhatsApp sender (number or id) registered in Zenvia")],
    name: Annotated[str, typer.Option(help="account name (default: zenvia-<sender>)")] = "",
    pack: Annotated[str, typer.Option(help="pack whose flows answer this sender")] = "care-ru",
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="this account's Zenvia API (a fake for offline demos)")
    ] = None,
) -> None:
    """Connect a Zenvia WhatsApp sender: the token is checked, the MESSAGE and MESSAGE_STATUS subscriptions
    are created pointing at OTKLIK_PUBLIC_URL, the templates are synced; secrets are stored encrypted."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.zenvia.admin import connect_zenvia, mask_token
        from otklik.core.errors import Unavailable

        settings = Settings()
        otklik = Otklik.build(settings)
        try:
            await otklik.start()
            added = await connect_zenvia(
                otklik, token=token, sender=sender, name=name, pack=pack, actor="cli", api_url=api_url
            )
        except Unavailable as exc:
            err.print(f"[red]{exc.user_message} ({api_url or settings.zenvia_api_url})[/red]")
            raise typer.Exit(2) from None
        except OtklikError as exc:
            err.print(f"[red]not connected: {exc.user_message}[/red]")
            raise typer.Exit(2) from None
        finally:
            await otklik.close()
        state = "added" if added.created else "updated"
        console.print(f"{state} Zenvia sender {added.sender} as account #{added.id} '{added.name}' (token {mask_token(token)})")  # fmt: skip
        console.print(f"webhook URL (subscribed at Zenvia): {added.webhook_url}")
        console.print(f"subscriptions: {', '.join(added.subscriptions)}")
        console.print(f"templates synced: {added.templates}")

    run_command(go())
