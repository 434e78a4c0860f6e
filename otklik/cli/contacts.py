"""`otklik contacts import FILE`: contacts with phone numbers from a CSV (docs/outreach.md "Importing contacts")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from otklik.cli.users import _run

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

app = typer.Typer(help="Contacts: import a CSV of clients with phone numbers.", no_args_is_help=True)


def _region(pack: str | None, region: str | None) -> str:
    from otklik.config import Settings
    from otklik.conversations.contact_import import check_region
    from otklik.conversations.packs import load_pack
    from otklik.core.errors import OtklikError

    if pack and region:
        typer.echo("error: give --pack or --region, not both", err=True)
        raise typer.Exit(2)
    try:
        if region:
            return check_region(region)
        return check_region(load_pack(pack or Settings().default_pack, Settings().packs_dirs).config.region)
    except OtklikError as exc:
        typer.echo(f"error: {exc.user_message}", err=True)
        raise typer.Exit(2) from None


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV, UTF-8, `,` or `;`: phone (required), name, language, tags, …")],
    pack: Annotated[str | None, typer.Option("--pack", help="the pack whose region numbers without + are in")] = None,
    region: Annotated[str | None, typer.Option("--region", help="region of numbers without +, e.g. RU, AR")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="add this tag to every imported contact")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would change, write nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Create or update contacts by phone (E.164); rows skipped are listed with their row number and reason.
    Opted-out contacts stay opted out."""
    from otklik.conversations import contact_import

    code = _region(pack, region)
    try:
        if not file.is_file():
            raise OSError("not a file")
        if file.stat().st_size > contact_import.MAX_BYTES:
            typer.echo(f"error: {file} is larger than {contact_import.MAX_BYTES // (1024 * 1024)} MB", err=True)
            raise typer.Exit(2)
        handle = file.open("rb")
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None

    async def go(otk: Otklik) -> Any:
        return await contact_import.import_contacts(
            otk.db, handle, region=code, tags=tag or (), dry_run=dry_run, actor="cli"
        )

    with handle:
        report = _run(go)
    if as_json:
        typer.echo(json.dumps(report.view(), ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"read {report.read}, created {report.created}, updated {report.updated}, skipped {report.skipped}"
        + (" (dry run: nothing written)" if dry_run else "")
    )
    for skipped in report.skipped_rows:
        typer.echo(f"row {skipped.row}: {skipped.reason}")
    for warning in report.warnings:
        typer.echo(f"row {warning.row}: warning: {warning.reason}")
    if report.ignored_columns:
        typer.echo("ignored columns: " + ", ".join(report.ignored_columns))
