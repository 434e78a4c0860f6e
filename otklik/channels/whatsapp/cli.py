"""`otklik channels add whatsapp` and `otklik whatsapp sync-templates`: the admin's use cases from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from otklik.config import Settings
from otklik.core.errors import OtklikError
from otklik.platform.clikit import run_command

app = typer.Typer(help="WhatsApp Cloud API numbers: templates.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def add(
    phone_number_id: Annotated[str, typer.Option("--phone-number-id", help="Meta app → WhatsApp → API Setup")],
    waba_id: Annotated[str, typer.Option("--waba-id", help="the WhatsApp Business Account ID")],
    token: Annotated[str, typer.Option(help="a system user's permanent access token (EAA…)")],
    app_secret: Annotated[str, typer.Option("--app-secret", help="Meta app → App settings → Basic")],
    verify_token: Annotated[
        str, typer.Option("--verify-token", help="for Meta's webhook check (default: generated)")
    ] = "",
    name: Annotated[str, typer.Option(help="account name (default: whatsapp-<number>)")] = "",
    pack: Annotated[str, typer.Option(help="pack whose flows answer this number")] = "care-ru",
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="this account's Graph API (a fake for offline demos)")
    ] = None,
) -> None:
    """Connect a WhatsApp number: the token is checked with Meta, secrets are stored encrypted, the templates
    are synced; prints the webhook URL and the verify token (once)."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.whatsapp.admin import connect_whatsapp, mask_token
        from otklik.core.errors import Unavailable

        settings = Settings()
        otklik = Otklik.build(settings)
        try:
            await otklik.start()
            added = await connect_whatsapp(
                otklik,
                phone_number_id=phone_number_id,
                waba_id=waba_id,
                token=token,
                app_secret=app_secret,
                verify_token=verify_token,
                name=name,
                pack=pack,
                actor="cli",
                api_url=api_url,
            )
        except Unavailable as exc:
            err.print(f"[red]{exc.user_message} ({api_url or settings.whatsapp_api_url})[/red]")
            raise typer.Exit(2) from None
        except OtklikError as exc:
            err.print(f"[red]not connected: {exc.user_message}[/red]")
            raise typer.Exit(2) from None
        finally:
            await otklik.close()
        state = "added" if added.created else "updated"
        console.print(
            f"{state} WhatsApp +{added.display_phone_number} as account #{added.id} '{added.name}' (token {mask_token(token)})"
        )
        public = (settings.public_url or "https://<your public URL>").rstrip("/")
        console.print(f"webhook URL (Meta app → WhatsApp → Configuration): {public}{added.webhook_path}")
        console.print(f"verify token (shown once): {added.verify_token}")
        console.print(f"templates synced: {added.templates}")

    run_command(go())


@app.command("sync-templates")
def sync(account: Annotated[str, typer.Option(help="account name")]) -> None:
    """Fetch the WABA's templates (name, language, category, status, parameters) into otklik."""

    async def go() -> None:
        from sqlalchemy import select

        from otklik.adapters.db.models import ChannelAccount
        from otklik.bootstrap import Otklik
        from otklik.channels.whatsapp.admin import sync_templates

        otklik = Otklik.build(Settings())
        try:
            await otklik.start()
            async with otklik.db.read() as session:
                account_id = await session.scalar(
                    select(ChannelAccount.id).where(ChannelAccount.kind == "whatsapp", ChannelAccount.name == account)
                )
            if account_id is None:
                err.print(f"[red]no WhatsApp account named {account[:120]!r}[/red]")
                raise typer.Exit(2)
            count = await sync_templates(otklik, int(account_id))
        except OtklikError as exc:
            err.print(f"[red]{exc.user_message}[/red]")
            raise typer.Exit(2) from None
        finally:
            await otklik.close()
        console.print(f"{count} templates synced")

    run_command(go())
