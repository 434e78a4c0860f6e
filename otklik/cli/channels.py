"""`otklik channels …`: add and list channel accounts (secrets are encrypted and shown masked)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from otklik.config import Settings
from otklik.platform.clikit import run_command

app = typer.Typer(help="Channel accounts: bots, numbers, marketplace keys, the API channel.", no_args_is_help=True)
add_app = typer.Typer(help="Add a channel account.", no_args_is_help=True)
app.add_typer(add_app, name="add")


def _kinds() -> None:
    """`otklik channels add <kind>`: each channel kind's own command (`ChannelKind.cli`)."""
    from otklik.platform.plugins import resolve
    from otklik.registry import CHANNEL_KINDS

    for kind in CHANNEL_KINDS:
        if kind.cli:
            add_app.command(kind.kind)(resolve(kind.cli))


_kinds()
console = Console()
err = Console(stderr=True)


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

    run_command(go())
