"""`otklik broadcasts …`: create (prints the id), start | pause | resume | cancel ID, status ID [--json] (a Rich
progress bar), segment NAME --conditions JSON (save; prints the live count). A refused input exits with 2 and
one clear line; nothing is changed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from otklik.core.errors import OtklikError

T = TypeVar("T")
app = typer.Typer(help="Broadcasts: send a message to a segment, exactly once, at the channel's limit.",
                  no_args_is_help=True)  # fmt: skip
console = Console()
err = Console(stderr=True)
MAX_JSON = 64 * 1024


def _in_db(work: Callable[[Any], Awaitable[T]]) -> T:
    from otklik.bootstrap import run_with_app  # here: `otklik --help` imports no database

    try:
        return run_with_app(work)
    except OtklikError as exc:
        err.print(exc.user_message, markup=False, highlight=False)
        raise typer.Exit(2) from None


def _fail(message: str) -> typer.Exit:
    err.print(message, markup=False, highlight=False)
    return typer.Exit(2)


def _quiet(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        start, end = (int(x) for x in value.split("-", 1))
    except ValueError:
        raise _fail("--quiet: two hours like 21-9") from None
    return start, end


@app.command("create")
def create_command(
    name: Annotated[str, typer.Option("--name", help="the broadcast's name")],
    segment: Annotated[str | None, typer.Option("--segment", help="a saved segment")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="every subscribed contact")] = False,
    text: Annotated[str | None, typer.Option("--text", help="the message")] = None,
    template: Annotated[str | None, typer.Option("--template", help="a WhatsApp template: NAME[:LANG]")] = None,
    params: Annotated[
        list[str] | None, typer.Option("--param", help="a template parameter; {field} per contact")
    ] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="a flow to start per recipient")] = None,
    account: Annotated[str | None, typer.Option("--account", help="only this channel account (name)")] = None,
    at: Annotated[str | None, typer.Option("--at", help="ISO time, in --timezone unless it has an offset")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="the seller's time zone")] = "UTC",
    quiet: Annotated[str | None, typer.Option("--quiet", help="quiet hours, e.g. 21-9 (no sends then)")] = None,
) -> None:
    """Create a broadcast (a draft; `start ID` sends it). Prints its id."""
    if (segment is None) == (not everyone):
        raise _fail("name the audience: --segment NAME or --all (not both)")
    if sum(x is not None for x in (text, template, flow)) != 1:
        raise _fail("name the message: --text, --template or --flow (one of them)")
    if flow is not None:
        raise _fail("--flow: starting a flow per recipient is not available yet; use --text or --template")
    message: dict[str, Any] = {"text": text or ""}
    if template is not None:
        tname, _, lang = template.partition(":")
        message["template"] = {"name": tname, "language": lang, "params": list(params or [])}
    quiet_hours = _quiet(quiet)

    async def work(otk: Any) -> int:
        from sqlalchemy import select

        from otklik.adapters.db.models import ChannelAccount
        from otklik.capabilities.outreach import service
        from otklik.core.errors import NotFound

        async with otk.db.write() as session:
            account_id = None
            if account is not None:
                account_id = await session.scalar(select(ChannelAccount.id).where(ChannelAccount.name == account))
                if account_id is None:
                    raise NotFound(f"no channel account named {account[:120]!r}")
            return await service.create(
                session, name=name, message=message, segment=segment, account_id=account_id, at=at,
                timezone=timezone, quiet=quiet_hours, actor="cli",
            )  # fmt: skip

    typer.echo(_in_db(work))


def _control(action: str, broadcast_id: int) -> None:
    async def work(otk: Any) -> str:
        from otklik.capabilities.outreach import service

        async with otk.db.write() as session:
            return await service.control(session, broadcast_id, action, actor="cli")

    typer.echo(f"broadcast {broadcast_id}: {_in_db(work)}")


IdArg = Annotated[int, typer.Argument(help="the broadcast's id", min=1, max=2**53)]


@app.command("start")
def start_command(broadcast_id: IdArg) -> None:
    """Send it (now, or at its --at time)."""
    _control("start", broadcast_id)


@app.command("pause")
def pause_command(broadcast_id: IdArg) -> None:
    """Stop queuing sends (those already queued, a few seconds' worth, still go)."""
    _control("pause", broadcast_id)


@app.command("resume")
def resume_command(broadcast_id: IdArg) -> None:
    """Go on where it stopped."""
    _control("resume", broadcast_id)


@app.command("cancel")
def cancel_command(broadcast_id: IdArg) -> None:
    """Stop for good: deliveries not queued yet are cancelled."""
    _control("cancel", broadcast_id)


@app.command("status")
def status_command(
    broadcast_id: IdArg,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Counts by state, with a progress bar and an ETA."""

    async def work(otk: Any) -> dict[str, Any]:
        from otklik.capabilities.outreach import service

        async with otk.db.read() as session:
            return (await service.progress(session, broadcast_id)).as_dict()

    found = _in_db(work)
    if as_json:
        typer.echo(json.dumps(found, ensure_ascii=False))
        return
    console.print(f"#{found['id']} {found['name']} — {found['status']}", markup=False, highlight=False)
    if found["reason"]:
        console.print(f"paused: {found['reason']}", markup=False, highlight=False)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, auto_refresh=False) as bar:  # fmt: skip
        bar.add_task("sent", total=max(found["total"], 1), completed=found["done"])
        bar.refresh()
    for key, value in sorted(found["counts"].items()):
        console.print(f"  {key}: {value}", markup=False, highlight=False)
    for reason, value in found["failed_by_reason"].items():
        console.print(f"  failed ({reason}): {value}", markup=False, highlight=False)
    for reason, value in found["skipped_by_reason"].items():
        console.print(f"  skipped ({reason}): {value}", markup=False, highlight=False)
    if found["eta_seconds"] is not None:
        console.print(f"  ETA: {found['eta_seconds']:.0f} s", markup=False, highlight=False)


@app.command("segment")
def segment_command(
    name: Annotated[str, typer.Argument(help="the segment's name")],
    conditions: Annotated[str, typer.Option("--conditions", help='JSON, e.g. {"tag": "vip"}')],
) -> None:
    """Save a segment (or replace its conditions); prints the live count."""
    if len(conditions) > MAX_JSON:
        raise _fail(f"--conditions: at most {MAX_JSON} bytes")
    try:
        parsed = json.loads(conditions)
    except ValueError as exc:
        raise _fail(f"--conditions is not JSON: {exc}") from None

    async def work(otk: Any) -> int:
        from otklik.capabilities.outreach import service

        async with otk.db.write() as session:
            await service.save_segment(session, name, parsed, actor="cli")
        async with otk.db.read() as session:
            count, _ = await service.preview(session, parsed)
        return count

    typer.echo(f"segment {name.strip()}: {_in_db(work)} contacts")
