"""`otklik channels add wildberries`: a WB API key from the command line (the admin's use case)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from otklik.config import Settings
from otklik.platform.clikit import run_command

console = Console()
err = Console(stderr=True)


def add(
    token: Annotated[
        str, typer.Option(help="a WB API token (Personal) with Feedbacks and Content; Buyers chat turns the chat on")
    ],
    name: Annotated[str, typer.Option(help="account name (one per seller cabinet)")] = "wildberries",
    pack: Annotated[str, typer.Option(help="pack whose review categories and templates apply")] = "care-ru",
    check: Annotated[bool, typer.Option(help="ping WB with the token before storing it")] = True,
) -> None:
    """Add a Wildberries API key: checked, stored encrypted, shown masked. `otklik wb sync` then caches the
    product cards and imports the reviews. The same use case as Settings → Channels in the admin."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.wildberries.admin import check_wb_token, connect_wildberries

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

    run_command(go())
