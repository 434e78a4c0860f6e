"""`otklik catalog import PATH [--replace] [--dry-run] [--skip-invalid]`: load a price list (CSV or XLSX);
`otklik catalog search "texto" [--json]`: what the bot would find, with scores and why;
`otklik catalog sync add-json|add-sql|list|run NAME|history NAME|remove NAME`: the scheduled sync sources.

Errors exit with status 2: an unreadable file with one message, invalid rows with every line and column.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress

T = TypeVar("T")
app = typer.Typer(help="Sales catalog: import products, search them.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
SHOWN_ERRORS = 200
PROGRESS_FROM = 2000  # rows: a shorter file needs no bar


def _say(console_: Console, line: str) -> None:
    console_.print(line, markup=False, highlight=False, soft_wrap=True)


def _in_db(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(container)` against the configured database (built here, inside the command)."""
    from otklik.bootstrap import run_with_app  # here: `otklik --help` imports no database

    return run_with_app(work)


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="a CSV (UTF-8 or Latin-1, ',' or ';') or XLSX price list")],
    replace: Annotated[bool, typer.Option("--replace", help="deactivate the products absent from the file")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would change, write nothing")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="import the valid rows anyway")] = False,
    net_prices: Annotated[bool, typer.Option("--net-prices", help="the prices exclude IVA")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON object")] = False,
) -> None:
    """Upsert the products by sku; report added / changed / deactivated and every bad row."""
    from otklik.capabilities.sales.importer import CatalogFileError, ImportReport, import_catalog, read_file

    try:
        sheet = read_file(path)
    except CatalogFileError as exc:
        if as_json:
            typer.echo(json.dumps({"error": "file", "message": str(exc)}, ensure_ascii=False))
        else:
            _say(err, f"cannot import: {exc}")
        raise typer.Exit(2) from None

    async def work(otk: Any) -> ImportReport:
        total = sheet.total or 0
        if total < PROGRESS_FROM or as_json:
            return await import_catalog(
                otk.db, sheet, replace, dry_run, skip_invalid, prices_include_iva=not net_prices
            )
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("importing", total=total)
            return await import_catalog(
                otk.db, sheet, replace, dry_run, skip_invalid,
                prices_include_iva=not net_prices, progress=lambda n: bar.advance(task, n),
            )  # fmt: skip

    report = _in_db(work)
    failed = bool(report.errors) and not (skip_invalid and report.applied)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False))
        raise typer.Exit(2 if failed else 0)
    for e in report.errors[:SHOWN_ERRORS]:
        _say(err, f"  {e}")
    if len(report.errors) > SHOWN_ERRORS:
        _say(err, f"  … and {len(report.errors) - SHOWN_ERRORS} more errors")
    if failed:
        _say(err, f"nothing imported: {len(report.errors)} errors")
        raise typer.Exit(2)
    _say(
        console,
        f"{report.added} added, {report.changed} changed, {report.deactivated} deactivated, "
        f"{report.unchanged} unchanged, {report.skipped} rows skipped"
        + (" (dry run: nothing written)" if dry_run else ""),
    )


@app.command("search")
def search_command(
    text: Annotated[str, typer.Argument(help='what a buyer would write, e.g. "domo 4mp exterior"')],
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="hits to show")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """What the bot would find: hits with scores and why; an out-of-stock hit with its in-stock alternatives."""

    async def work(otk: Any) -> list[dict[str, Any]]:
        from otklik.capabilities.sales.search import search
        from otklik.capabilities.sales.similar import similar

        out: list[dict[str, Any]] = []
        async with otk.db.read() as session:
            for hit in await search(session, text, limit):
                p = hit.product
                row = {
                    "sku": p["sku"], "name": p["name"], "brand": p["brand"], "category": p["category"],
                    "price": f"{p['price']:.2f}", "currency": p["currency"], "stock": p["stock"],
                    "score": hit.score, "why": hit.why,
                }  # fmt: skip
                if p["stock"] <= 0:
                    row["alternatives"] = [
                        {"sku": a.product["sku"], "name": a.product["name"], "price": f"{a.product['price']:.2f}",
                         "stock": a.product["stock"], "reason": a.reason}
                        for a in await similar(session, p)
                    ]  # fmt: skip
                out.append(row)
        return out

    hits = _in_db(work)
    if as_json:
        typer.echo(json.dumps({"query": text, "hits": hits}, ensure_ascii=False))
        return
    if not hits:
        _say(console, "nothing found")
        return
    from rich.table import Table

    table = Table("sku", "name", "price", "stock", "score", "why", title=f"«{text}»")
    for h in hits:
        table.add_row(h["sku"], h["name"], f"{h['currency']} {h['price']}", str(h["stock"]), f"{h['score']:.2f}",
                      "; ".join(h["why"]))  # fmt: skip
    console.print(table)
    for h in hits:
        for a in h.get("alternatives", []):
            _say(console, f"{h['sku']} sin stock → {a['sku']} ({a['name']}, {a['stock']} en stock): {a['reason']}")


@app.command("seller")
def seller_command(
    name: Annotated[str | None, typer.Option("--name", help="razón social on the documents")] = None,
    cuit: Annotated[str | None, typer.Option("--cuit", help="the seller's CUIT (check digit verified)")] = None,
    address: Annotated[str | None, typer.Option("--address", help="the seller's address")] = None,
    instructions: Annotated[
        str | None, typer.Option("--instructions", help="payment instructions; one line each (\\n)")
    ] = None,
    invoice_series: Annotated[str | None, typer.Option("--invoice-series", help="series of our invoices")] = None,
) -> None:
    """Show or set the letterhead of the pre-invoice and the invoice, and the invoice series."""
    from otklik.capabilities.sales import seller
    from otklik.core.errors import InvalidInput

    changes = {"seller_name": name, "seller_cuit": cuit, "seller_address": address,
               "payment_instructions": None if instructions is None else instructions.replace("\\n", "\n"),
               "invoice_series": invoice_series}  # fmt: skip

    async def work(otk: Any) -> dict[str, Any]:
        return await seller.save(otk.db, changes, actor="cli")

    try:
        shown = _in_db(work)
    except InvalidInput as exc:
        _say(err, f"not saved: {exc.user_message}")
        raise typer.Exit(2) from None
    for key, value in shown.items():
        _say(console, f"{key}: {value}")


# --- `otklik catalog sync …` -----------------------------------------------------------------------------

sync_app = typer.Typer(help="Scheduled sync from the seller's system (JSON endpoint or SQL query).",
                       no_args_is_help=True)  # fmt: skip
app.add_typer(sync_app, name="sync")

Every = Annotated[int, typer.Option("--every", help="minutes between runs (1-10080)")]
Timeout = Annotated[int, typer.Option("--timeout", help="seconds a page or the query may take (1-600)")]
Maps = Annotated[list[str] | None, typer.Option("--map", help="source_field=column (repeatable), e.g. codigo=sku")]
Replace = Annotated[bool, typer.Option("--replace", help="deactivate the products the source no longer lists")]
NetPrices = Annotated[bool, typer.Option("--net-prices", help="the prices exclude IVA")]
AsJson = Annotated[bool, typer.Option("--json", help="print one JSON object")]


def _sync_fail(message: str, as_json: bool = False) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    else:
        _say(err, message)
    raise typer.Exit(2)


def _added(source: Any) -> None:
    _say(console, f"sync source {source.name!r} added ({source.kind}, every {source.every_minutes} min): {source.url}")


@sync_app.command("add-json")
def sync_add_json(
    name: Annotated[str, typer.Argument(help="a short name, e.g. erp")],
    url: Annotated[str, typer.Argument(help="the first page's http(s) URL")],
    token: Annotated[
        str | None, typer.Option("--token", envvar="OTKLIK_SYNC_TOKEN", help="bearer token (stored encrypted)")
    ] = None,
    paging: Annotated[
        str, typer.Option("--paging", help="next (the body's `next` URL) or page (?page&per_page)")
    ] = "next",
    items_key: Annotated[str, typer.Option("--items-key", help="where the list is in an object body")] = "items",
    per_page: Annotated[int, typer.Option("--per-page", help="items per page (paging=page)")] = 100,
    every: Every = 60,
    timeout: Timeout = 30,
    maps: Maps = None,
    replace: Replace = False,
    net_prices: NetPrices = False,
) -> None:
    """Add a JSON HTTP endpoint as a catalog source."""
    from otklik.capabilities.sales.sync import SyncError, add_json_source, parse_mapping

    try:
        mapping = parse_mapping(maps or [])
        source = _in_db(lambda otk: add_json_source(
            otk.db, otk.vault, name, url, token=token, every_minutes=every, timeout_seconds=timeout, paging=paging,
            items_key=items_key, per_page=per_page, mapping=mapping, replace=replace,
            prices_include_iva=not net_prices))  # fmt: skip
    except SyncError as exc:
        _sync_fail(f"cannot add: {exc}")
    _added(source)


@sync_app.command("add-sql")
def sync_add_sql(
    name: Annotated[str, typer.Argument(help="a short name, e.g. erp")],
    url: Annotated[
        str,
        typer.Argument(envvar="OTKLIK_SYNC_DB_URL", help="SQLAlchemy URL of the seller's database (stored encrypted)"),
    ],
    query: Annotated[str, typer.Argument(help="one read-only SELECT naming the catalog's columns")],
    every: Every = 60,
    timeout: Timeout = 30,
    maps: Maps = None,
    replace: Replace = False,
    net_prices: NetPrices = False,
) -> None:
    """Add a read-only SQL query on the seller's database as a catalog source."""
    from otklik.capabilities.sales.sync import SyncError, add_sql_source, parse_mapping

    try:
        mapping = parse_mapping(maps or [])
        source = _in_db(lambda otk: add_sql_source(
            otk.db, otk.vault, name, url, query, every_minutes=every, timeout_seconds=timeout, mapping=mapping,
            replace=replace, prices_include_iva=not net_prices))  # fmt: skip
    except SyncError as exc:
        _sync_fail(f"cannot add: {exc}")
    _added(source)


@sync_app.command("list")
def sync_list(as_json: AsJson = False) -> None:
    """The sources with their last run (secrets masked)."""
    from otklik.capabilities.sales.sync import list_sources

    shown = [s.shown() for s in _in_db(lambda otk: list_sources(otk.db))]
    if as_json:
        typer.echo(json.dumps({"sources": shown}, ensure_ascii=False))
        return
    if not shown:
        _say(console, "no sync sources")
    for s in shown:
        last = f"{s['last_status']} at {s['last_run_at']}" if s["last_run_at"] else "never run"
        _say(console, f"{s['name']} ({s['kind']}, every {s['every_minutes']} min{', replace' if s['replace'] else ''}): "
                      f"{s['url']} — {last}; next {s['next_run_at']}")  # fmt: skip
        if s["last_error"]:
            _say(console, f"  error: {s['last_error']}")


@sync_app.command("run")
def sync_run(name: Annotated[str, typer.Argument(help="the source's name")], as_json: AsJson = False) -> None:
    """Run one source now; exit 2 when the run fails (the catalog is then left as it was)."""
    from otklik.capabilities.sales.sync import SyncError, run_named

    try:
        result = _in_db(lambda otk: run_named(otk.db, otk.vault, name))
    except SyncError as exc:
        _sync_fail(str(exc), as_json)
    data = result.to_json()
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False))
    elif result.status == "ok":
        _say(console, f"{name}: {data['rows']} rows: {data['added']} added, {data['changed']} changed, "
                      f"{data['deactivated']} deactivated, {data['unchanged']} unchanged")  # fmt: skip
    else:
        _say(err, f"{name}: sync {result.status}, the catalog is unchanged: {result.error}")
    if result.status != "ok":
        raise typer.Exit(2)


@sync_app.command("history")
def sync_history(
    name: Annotated[str, typer.Argument(help="the source's name")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    as_json: AsJson = False,
) -> None:
    """The source's last runs, newest first."""
    from otklik.capabilities.sales.sync import get_source, history

    async def work(otk: Any) -> list[dict[str, Any]] | None:
        if await get_source(otk.db, name) is None:
            return None
        return await history(otk.db, name, limit)

    runs = _in_db(work)
    if runs is None:
        _sync_fail(f"no sync source named {name!r}", as_json)
        return
    if as_json:
        typer.echo(json.dumps({"source": name, "runs": runs}, ensure_ascii=False, default=str))
        return
    if not runs:
        _say(console, "no runs yet")
    for r in runs:
        counts = f"{r['added']} added, {r['changed']} changed, {r['deactivated']} deactivated"
        _say(console, f"{r['started_at']} {r['status']}: {r['rows']} rows; {counts}"
                      + (f" — {r['error']}" if r["error"] else ""))  # fmt: skip


@sync_app.command("remove")
def sync_remove(name: Annotated[str, typer.Argument(help="the source's name")]) -> None:
    """Remove a source and its history (the products stay)."""
    from otklik.capabilities.sales.sync import remove_source

    if not _in_db(lambda otk: remove_source(otk.db, name)):
        _sync_fail(f"no sync source named {name!r}")
    _say(console, f"sync source {name!r} removed")
