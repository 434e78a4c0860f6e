"""`otklik users create|reset-password|list`: admin accounts from the terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import ValidationError

from otklik.config import Settings
from otklik.core.errors import OtklikError

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

T = TypeVar("T")

app = typer.Typer(help="Admin users: create, reset a password, list.", no_args_is_help=True)


def _run(coro_factory: Callable[[Otklik], Awaitable[T]]) -> T:
    from otklik.bootstrap import Otklik

    try:
        settings = Settings()
    except ValidationError as exc:
        typer.echo(f"configuration error: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None

    async def main() -> T:
        otk = Otklik.build(settings)
        try:
            await otk.start()
            return await coro_factory(otk)
        finally:
            await otk.close()

    try:
        return asyncio.run(main())
    except OtklikError as exc:
        typer.echo(f"error: {exc.user_message}", err=True)
        raise typer.Exit(2) from None


@app.command("create")
def create(
    login: str = typer.Option(..., "--login", help="sign-in name"),
    role: str = typer.Option("operator", "--role", help="owner | admin | operator | moderator | analyst"),
    name: str = typer.Option("", "--name"),
    language: str = typer.Option("ru", "--language", help="ru | en | es"),
    password: str = typer.Option(
        None, "--password", help="at least 10 characters; omit to generate one (printed once)"
    ),
) -> None:
    """Create an admin user."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.users import create_user

        return await create_user(otk.db, login, role, password=password, name=name, language=language, actor="cli")

    _uid, secret = _run(go)
    typer.echo(f"created {login.strip().lower()} ({role})")
    if password is None:
        typer.echo(f"password: {secret}")


@app.command("reset-password")
def reset_password(
    login: str = typer.Argument(..., help="the user's login"),
    password: str = typer.Option(None, "--password", help="omit to generate one (printed once)"),
) -> None:
    """Set a new password; every session of the user ends."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.users import set_password

        return await set_password(otk.db, login, password, actor="cli")

    secret = _run(go)
    typer.echo(f"password of {login.strip().lower()} changed")
    if password is None:
        typer.echo(f"password: {secret}")


@app.command("list")
def list_users() -> None:
    """Users with role and state (no password data)."""
    from sqlalchemy import select

    from otklik.adapters.db.models import User

    async def go(otk: Otklik) -> Any:
        async with otk.db.read() as session:
            return (await session.execute(select(User).order_by(User.login))).scalars().all()

    for user in _run(go):
        typer.echo(f"{user.login}\t{user.role}\t{'active' if user.active else 'inactive'}")
