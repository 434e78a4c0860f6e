"""`otklik financing simulate|plans`: the simulator from a rates file (YAML or JSON), as a table or JSON;
`otklik financing import|export|tables`: the rates tables in the database.

A refused input (amount, down payment, installments, minimum installment) exits with status 2 and, with
`--json`, prints `{"error": CODE, "message": …}`; a bad rates file exits with 2 and lists every error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from otklik.capabilities.financing.rules import (
    MAX_TABLE_BYTES,
    Plan,
    RatesInvalid,
    RatesTable,
    Refused,
    parse_table,
    simulate,
    suggested_plans,
)
from otklik.core.errors import OtklikError

T = TypeVar("T")
app = typer.Typer(help="Financing: simulate installment plans from a rates table.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

RatesOpt = Annotated[Path, typer.Option("--rates", help="the rates table (YAML or JSON)")]
AmountOpt = Annotated[str, typer.Option("--amount", help="the price, e.g. 150000.00")]
DownOpt = Annotated[str, typer.Option("--down-payment", help="paid up front, e.g. 50000")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]


def _fail(as_json: bool, payload: dict[str, Any], lines: list[str]) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        for line in lines:
            err.print(line, markup=False, highlight=False)
    return typer.Exit(2)


def _table(path: Path, as_json: bool) -> RatesTable:
    try:
        if not path.is_file():
            raise RatesInvalid([f"{path}: no such file"])
        if path.stat().st_size > MAX_TABLE_BYTES:
            raise RatesInvalid([f"{path}: the file is larger than {MAX_TABLE_BYTES} bytes"])
        return parse_table(path.read_bytes())
    except OSError as exc:
        error = RatesInvalid([f"{path}: {exc.strerror or exc}"])
    except RatesInvalid as exc:
        error = exc
    raise _fail(
        as_json,
        {"error": "rates", "message": error.user_message, "errors": list(error.errors)},
        ["the rates table is invalid:", *(f"  - {e}" for e in error.errors)],
    )


def _refused(exc: Refused, as_json: bool) -> typer.Exit:
    return _fail(as_json, exc.to_json(), [f"refused ({exc.code}): {exc.user_message}"])


@app.command("simulate")
def simulate_command(
    rates: RatesOpt,
    amount: AmountOpt,
    installments: Annotated[str, typer.Option("--installments", help="the number of installments")],
    down_payment: DownOpt = "0",
    as_json: JsonOpt = False,
) -> None:
    """One plan: every payment with its interest, IVA, principal and balance."""
    table = _table(rates, as_json)
    try:
        plan = simulate(table, amount, installments, down_payment)
    except Refused as exc:
        raise _refused(exc, as_json) from None
    if as_json:
        typer.echo(json.dumps(plan.to_json(), ensure_ascii=False))
        return
    console.print(_summary([plan], f"{plan.installments} installments ({table.currency})"))
    console.print(_schedule(plan))


@app.command("plans")
def plans_command(
    rates: RatesOpt,
    amount: AmountOpt,
    down_payment: DownOpt = "0",
    as_json: JsonOpt = False,
) -> None:
    """Every suggested plan of the table, side by side (a refused count says why)."""
    table = _table(rates, as_json)
    try:
        results = suggested_plans(table, amount, down_payment)
    except Refused as exc:
        raise _refused(exc, as_json) from None
    if as_json:
        out = [
            r.to_json() if isinstance(r, Plan) else {"installments": n, **r.to_json()}
            for n, r in zip(table.suggested, results, strict=True)
        ]
        typer.echo(json.dumps({"plans": out}, ensure_ascii=False))
        return
    plans = [r for r in results if isinstance(r, Plan)]
    if plans:
        console.print(_summary(plans, f"suggested plans ({table.currency})"))
    for n, r in zip(table.suggested, results, strict=True):
        if isinstance(r, Refused):
            console.print(f"{n} installments: refused ({r.code}): {r.user_message}", markup=False, highlight=False)


def _summary(plans: list[Plan], title: str) -> Table:
    table = Table(title=title)
    table.add_column("")
    for plan in plans:
        table.add_column(f"{plan.installments} cuotas", justify="right")
    rows: list[tuple[str, str]] = [
        ("financed", "financed"), ("installment", "installment"), ("last installment", "last_installment"),
        ("total", "total"), ("interest", "interest"), ("IVA", "iva"),
        ("TNA %", "tna"), ("TEM %", "tem"), ("TEA %", "tea"), ("CFTEA %", "cftea"),
    ]  # fmt: skip
    shown = [p.to_json() for p in plans]
    for label, key in rows:
        table.add_row(label, *(s[key] if s[key] is not None else "—" for s in shown))
    return table


def _schedule(plan: Plan) -> Table:
    out = plan.to_json()
    if plan.kind == "coefficient":
        table = Table("n", "payment", title="schedule")
        for row in out["schedule"]:
            table.add_row(str(row["n"]), row["payment"])
        return table
    table = Table("n", "payment", "interest", "IVA", "principal", "balance", title="schedule")
    for row in out["schedule"]:
        table.add_row(str(row["n"]), row["payment"], row["interest"], row["iva"], row["principal"], row["balance"])
    return table


# --- rates tables in the database ---------------------------------------------------------------------


def _in_db(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(container)` against the configured database (built here, inside the command)."""
    from otklik.bootstrap import run_with_app  # here: `otklik --help` imports no database

    try:
        return run_with_app(work)
    except RatesInvalid as exc:
        for line in ["the rates table is invalid (nothing saved):", *(f"  - {e}" for e in exc.errors)]:
            err.print(line, markup=False, highlight=False)
        raise typer.Exit(2) from None
    except OtklikError as exc:
        err.print(exc.user_message, markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command("import")
def import_command(
    name: Annotated[str, typer.Option("--name", help="the table's name, e.g. visa")],
    path: Annotated[Path, typer.Argument(help="a rates file (YAML or JSON)")],
    default: Annotated[bool, typer.Option("--default", help="make it the default table")] = False,
) -> None:
    """Save a rates file as the named table's next version (validated first; audited)."""
    _table(path, False)  # a refused file stops here with every error, before the database is opened
    source = path.read_bytes()

    async def work(otk: Any) -> int:
        from otklik.capabilities.financing import service

        async with otk.db.write() as session:
            version = await service.save(session, name, source, actor="cli", note="import")
            if default:
                await service.set_default(session, name, actor="cli")
        return version

    version = _in_db(work)
    console.print(f"saved {name.strip().lower()} version {version}", markup=False, highlight=False)


@app.command("export")
def export_command(
    name: Annotated[str, typer.Option("--name", help="the table's name")],
    as_json: JsonOpt = False,
) -> None:
    """Print the table's current version (YAML as saved, or JSON)."""

    async def work(otk: Any) -> str:
        from otklik.capabilities.financing import service

        async with otk.db.read() as session:
            return await service.export(session, name, "json" if as_json else "yaml")

    typer.echo(_in_db(work), nl=False)


@app.command("tables")
def tables_command() -> None:
    """The rates tables: name, current version, default."""

    async def work(otk: Any) -> list[dict[str, Any]]:
        from otklik.capabilities.financing import service

        async with otk.db.read() as session:
            return await service.list_tables(session)

    for row in _in_db(work):
        mark = "\tdefault" if row["is_default"] else ""
        typer.echo(f"{row['name']}\tversion {row['version']}{mark}")
