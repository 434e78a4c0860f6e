"""`otklik sms set|show|test`: the SMS provider used to reach people outside the chat (docs/reach.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from otklik.cli.users import _run

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

app = typer.Typer(
    help="SMS for reminders and outreach: set the provider, show it, send a test SMS.", no_args_is_help=True
)


@app.command("set")
def set_provider(
    provider: Annotated[str, typer.Option("--provider", help="smsru, http (a generic gateway) or none")],
    sender: Annotated[
        str, typer.Option("--sender", help="sender name approved by the provider (≤ 11 characters)")
    ] = "",
    http: Annotated[
        Path | None,
        typer.Option("--http", help="JSON file of the generic gateway's call (docs/reach.md)", dir_okay=False),
    ] = None,
    secret_env: Annotated[
        str, typer.Option("--secret-env", help="read the api_id / auth header value from this environment variable")
    ] = "OTKLIK_SMS_SECRET",  # noqa: S107 - the name of a variable, not a secret
) -> None:
    """Store the provider; its secret (SMS.ru api_id, or the gateway's auth header value) is read from the
    environment (never from an argument, which other users can see), sealed with the Vault. Unset: kept."""
    import os

    secret = os.environ.get(secret_env, "")
    try:
        http_text = http.read_text(encoding="utf-8")[:100_000] if http is not None else ""
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {http}: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go(otk: Otklik) -> Any:
        from otklik.platform.reach import config

        return await config.save(
            otk.db, otk.vault, provider=provider, sender=sender, secret=secret, http=http_text, actor="cli"
        )

    saved = _run(go)
    typer.echo(f"sms provider: {saved.provider}" + (" (secret stored)" if saved.has_secret else ""))


@app.command("show")
def show() -> None:
    """The provider and sender name (never the secret)."""

    async def go(otk: Otklik) -> Any:
        from otklik.platform.reach import config

        return await config.load(otk.db)

    current = _run(go)
    typer.echo(
        f"provider\t{current.provider}\nsender\t{current.sender or '-'}\nsecret\t{'set' if current.has_secret else '-'}"
    )


@app.command("test")
def test(
    to: Annotated[str, typer.Option("--to", help="phone number, e.g. +7 917 123-45-67")],
    text: Annotated[str, typer.Option("--text", help="the message")] = "otklik: test SMS",
) -> None:
    """Send one SMS now through the configured provider and print the provider's message id."""

    async def go(otk: Otklik) -> Any:
        from otklik.core.channel import SendError
        from otklik.platform.reach.service import send_test_sms

        try:
            return await send_test_sms(otk.db, otk.vault, otk.settings, to, text)
        except SendError as exc:
            return exc

    result = _run(go)
    if isinstance(result, Exception):
        typer.echo(f"error: not sent: {result}", err=True)
        raise typer.Exit(1)
    typer.echo(f"sent (provider id {result.provider_id or '-'})")
