"""`otklik channels add webhook`: the API channel from the command line (the admin's use case)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from otklik.config import Settings
from otklik.platform.clikit import run_command

console = Console()
err = Console(stderr=True)


def add(
    url: Annotated[str, typer.Option(help="where otklik POSTs outbound messages (https://…)")],
    name: Annotated[str, typer.Option(help="account name, used in /webhooks/api/<name>")] = "api",
    pack: Annotated[str, typer.Option(help="pack whose flows answer this channel")] = "care-ru",
    per_second: Annotated[float | None, typer.Option(min=0.1, help="outbound pace limit")] = None,
) -> None:
    """The API channel: signed JSON webhooks both ways. Prints the signing secret once."""

    async def go() -> None:
        from otklik.bootstrap import Otklik
        from otklik.channels.api.admin import check_webhook_url, connect_webhook

        check_webhook_url(url)  # a bad URL fails before anything starts
        otklik = Otklik.build(Settings())
        try:
            await otklik.start()
            added = await connect_webhook(otklik, url, name=name, pack=pack, actor="cli", per_second=per_second)
        finally:
            await otklik.close()
        console.print(f"added channel account #{added.id} '{added.name}'. Inbound: POST /webhooks/api/{added.name}")
        console.print(f"signing secret (shown once, keep it safe): {added.secret}")

    run_command(go())
