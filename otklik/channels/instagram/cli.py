"""`otklik channels add instagram`: the admin's connect use case from the command line."""

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
    page_id: Annotated[str, typer.Option("--page-id", help="the Facebook page linked to the Instagram account")],
    token: Annotated[str, typer.Option(help="the page access token (EAA…) with instagram_manage_messages")],
    app_secret: Annotated[str, typer.Option("--app-secret", help="Meta app → App settings → Basic")],
    verify_token: Annotated[
        str, typer.Option("--verify-token", help="for Meta's webhook check (default: generated)")
    ] = "",
    human_agent: Annotated[
        bool, typer.Option("--human-agent", help="operators may reply up to 7 days (the app has Human Agent)")
    ] = False,
    name: Annotated[str, typer.Option(help="account name (default: instagram-<page id>)")] = "",
    pack: Annotated[str, typer.Option(help="pack whose flows answer this account")] = "care-ru",
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="this account's Graph API (a fake for offline demos)")
    ] = None,
) -> None:
    """Connect an Instagram professional account: the token is checked with Meta, secrets are stored
    encrypted; prints the webhook URL and the verify token (once)."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.instagram.admin import connect_instagram, mask_token
        from otklik.core.errors import Unavailable

        settings = Settings()
        otklik = Otklik.build(settings)
        try:
            await otklik.start()
            added = await connect_instagram(
                otklik, page_id=page_id, token=token, app_secret=app_secret, verify_token=verify_token,
                human_agent=human_agent, name=name, pack=pack, actor="cli", api_url=api_url,
            )  # fmt: skip
        except Unavailable as exc:
            err.print(f"[red]{exc.user_message} ({api_url or settings.instagram_api_url})[/red]")
            raise typer.Exit(2) from None
        except OtklikError as exc:
            err.print(f"[red]not connected: {exc.user_message}[/red]")
            raise typer.Exit(2) from None
        finally:
            await otklik.close()
        state = "added" if added.created else "updated"
        console.print(f"{state} Instagram {added.instagram_id} (page {added.page_name or added.page_id}) as account #{added.id} '{added.name}' (token {mask_token(token)})")  # fmt: skip
        public = (settings.public_url or "https://<your public URL>").rstrip("/")
        console.print(f"webhook URL (Meta app → Instagram → Webhooks): {public}{added.webhook_path}")
        console.print(f"verify token (shown once): {added.verify_token}")

    run_command(go())
