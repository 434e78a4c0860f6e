"""What CLI commands share: run a coroutine, turn a refused input into a clear message and exit code 2."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import typer
from rich.console import Console

from otklik.core.errors import OtklikError

console = Console()
err = Console(stderr=True)


def run_command(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a command's coroutine; an `OtklikError` is printed (its user message only) and exits with 2."""
    try:
        asyncio.run(coro)
    except OtklikError as exc:
        err.print(f"[red]{exc.user_message}[/red]")
        raise typer.Exit(2) from None
