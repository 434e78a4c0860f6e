"""`otklik wb …`: run the Wildberries sync once (cards, reviews, reply drafts, approved replies)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from otklik.config import Settings
from otklik.core.errors import OtklikError

if TYPE_CHECKING:
    from otklik.capabilities.care.sync import SyncReport

app = typer.Typer(help="Wildberries: sync product cards and reviews.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _date(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        err.print(f"[red]--{name} must be a date like 2026-01-31, not {value!r}[/red]")
        raise typer.Exit(2) from None


@app.command("sync")
def sync(
    account: Annotated[str | None, typer.Option(help="only this WB account (default: all)")] = None,
    full: Annotated[bool, typer.Option(help="re-read all cards and all reviews, not only changes")] = False,
    since: Annotated[str | None, typer.Option(help="import reviews from this date (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="import reviews up to this date (YYYY-MM-DD)")] = None,
    cards: Annotated[bool, typer.Option(help="sync product cards (barcodes)")] = True,
    reviews: Annotated[bool, typer.Option(help="import and classify reviews")] = True,
    replies: Annotated[bool, typer.Option(help="draft replies and post approved ones")] = True,
) -> None:
    """Run the WB sync once for every WB account (what the worker does every 15 minutes)."""
    from otklik.capabilities.care.sync import SyncOptions

    options = SyncOptions(
        cards=cards, feedbacks=reviews, replies=replies, full=full,
        date_from=_date(since, "since"), date_to=_date(until, "until"),
    )  # fmt: skip

    async def go() -> int:
        from otklik.bootstrap import Otklik
        from otklik.capabilities.care.sync import sync_all

        otklik = Otklik.build(Settings())
        try:
            await otklik.start()
            with console.status("syncing with Wildberries…"):
                reports = await sync_all(otklik.db, otklik.settings, otklik.vault, options, llm=otklik.ctx.llm,
                                         limiters=otklik.ctx.wb_limiters, account=account)  # fmt: skip
        finally:
            await otklik.close()
        if not reports:
            err.print("[red]no Wildberries account: add one with `otklik channels add wildberries --token …`[/red]")
            return 2
        table = Table("account", "cards", "barcodes", "reviews read", "new", "changed", "negative", "drafts",
                      "posted", "failed", "result")  # fmt: skip
        for r in reports:
            table.add_row(r.account, *_cells(r))
        console.print(table)
        return 1 if any(r.error for r in reports) else 0

    try:
        code = asyncio.run(go())
    except OtklikError as exc:
        err.print(f"[red]{exc.user_message}[/red]")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _cells(r: SyncReport) -> list[str]:
    cells = [str(r.cards.cards), str(r.cards.barcodes)] if r.cards else ["—", "—"]
    f = r.feedbacks
    cells += [str(f.fetched), str(f.new), str(f.updated), str(f.negative)] if f else ["—"] * 4
    cells.append(str(r.drafts))
    cells += [str(r.replies.posted), str(r.replies.failed)] if r.replies else ["—", "—"]
    cells.append(f"[red]{r.error}[/red]" if r.error else "[green]ok[/green]")
    return cells
