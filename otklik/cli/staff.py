"""`otklik staff add|list|remove`: executives and other staff who are notified (docs/staff.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from otklik.cli.users import _run

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

app = typer.Typer(help="Staff who are told about orders, bookings, leads: add, list, remove.", no_args_is_help=True)


@app.command("add")
def add(
    name: Annotated[str, typer.Option("--name", help="shown in the admin and in assignments")],
    email: Annotated[str, typer.Option("--email", help="e-mail address (SMTP)")] = "",
    telegram: Annotated[str, typer.Option("--telegram", help="Telegram chat id (a person or a staff group)")] = "",
    packs: Annotated[str, typer.Option("--packs", help="comma-separated packs served; empty = every pack")] = "",
    rules: Annotated[str, typer.Option("--rules", help="comma-separated rule keys, e.g. category:nvr")] = "",
) -> None:
    """Add a member of staff (an e-mail address, a Telegram chat id, or both)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.staff.members import add_member

        return await add_member(
            otk.db, name, email=email, telegram_chat_id=telegram, packs=packs, rules=rules,
            known_packs=otk.available_packs(), actor="cli",
        )  # fmt: skip

    member = _run(go)
    typer.echo(f"added {member.name} (id {member.id})")


@app.command("list")
def list_staff() -> None:
    """Members of staff: id, name, e-mail, Telegram, packs, rules, active."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.staff.members import list_members

        return await list_members(otk.db)

    for m in _run(go):
        typer.echo(
            f"{m.id}\t{m.name}\t{m.email or '-'}\t{m.telegram_chat_id or '-'}\t{','.join(m.packs) or '*'}"
            f"\t{','.join(m.rules) or '-'}\t{'active' if m.active else 'inactive'}"
        )


@app.command("remove")
def remove(who: Annotated[str, typer.Argument(help="the member's name or id")]) -> None:
    """Remove a member of staff (past notifications stay)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.staff.members import remove_member

        return await remove_member(otk.db, who, actor="cli")

    member = _run(go)
    typer.echo(f"removed {member.name}")
