"""`otklik financing simulate|plans`: the simulator from a rates file (YAML or JSON), as a table or JSON.

A refused input (amount, down payment, installments, minimum installment) exits with status 2 and, with
`--json`, prints `{"error": CODE, "message": …}`; a bad rates file exits with 2 and lists every error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
