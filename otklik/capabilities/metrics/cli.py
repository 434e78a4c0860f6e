"""`otklik metrics [--from DATE] [--to DATE] [--channel C] … [--json]`: the numbers of a date range, read from
the aggregate rows (`--recompute` runs the job once first). A refused filter exits with 2 and a message."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console

from otklik.clock import utcnow
from otklik.config import Settings
from otklik.platform.clikit import run_command

app = typer.Typer(help="Metrics: the seller's numbers (docs/metrics.md).")
console = Console()


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value / 1000:g} s"


def _share(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def lines(data: dict[str, Any]) -> list[str]:
    """The report as the text the command prints."""
    bot, op = data["bot_response_ms"], data["operator_first_response_ms"]
    reasons = ", ".join(f"{k} {v}" for k, v in data["handoffs_by_reason"].items())
    bound = " (a lower bound: some channels do not report reads)" if data["seen_unanswered_lower_bound"] else ""
    return [
        f"metrics {data['from']} … {data['to']}" + "".join(f", {k}={v}" for k, v in data["filters"].items()),
        f"conversations           {data['conversations']} (reopened {data['reopened']})",
        f"messages in / out       {data['messages_in']} / {data['messages_out']}",
        f"handled by the bot      {_share(data['handled_by_bot_share'])} ({data['bot_handled']} of {data['could_handoff']})",
        f"hand-offs               {data['handoffs']} ({reasons})",
        f"bot response p50/90/99  {_ms(bot['p50'])} / {_ms(bot['p90'])} / {_ms(bot['p99'])}; over 10 s "
        f"{_share(bot['over_10s_share'])} of {bot['count']}",
        f"operator first response {_ms(op['p50'])} / {_ms(op['p90'])} / {_ms(op['p99'])} ({op['count']})",
        f"seen but unanswered     {data['seen_unanswered']}{bound}",
        f"leads / bookings        {data['leads']} / {data['bookings']} ({_share(data['conversion_lead_booking'])})",
        f"orders / claims         {data['orders']} / {data['claims']}",
    ]  # fmt: skip


@app.callback(invoke_without_command=True)
def metrics(
    ctx: typer.Context,
    date_from: Annotated[
        str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default: 30 days back)")
    ] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD (default: today, UTC)")] = None,
    channel: Annotated[str | None, typer.Option(help="a channel kind: telegram, webchat, webhook…")] = None,
    account: Annotated[str | None, typer.Option(help="a channel account id")] = None,
    pack: Annotated[str | None, typer.Option(help="a pack")] = None,
    source: Annotated[str | None, typer.Option(help="a source (deep-link payload); '-' for none")] = None,
    flow: Annotated[str | None, typer.Option(help="a flow; '-' for none")] = None,
    operator: Annotated[str | None, typer.Option(help="an operator's login")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    recompute: Annotated[bool, typer.Option(help="run the aggregation job once first")] = False,
) -> None:
    """Print the numbers of a date range (from the aggregate rows the worker keeps)."""
    if ctx.invoked_subcommand is not None:
        return
    from otklik.capabilities.metrics.definitions import parse_filters

    raw = {"from": date_from, "to": date_to, "channel": channel, "account": account, "pack": pack,
           "source": source, "flow": flow, "operator": operator}  # fmt: skip

    async def go() -> None:
        filters = parse_filters(raw, today=utcnow().date())
        from otklik.bootstrap import Otklik
        from otklik.capabilities.metrics import aggregate
        from otklik.capabilities.metrics.query import report

        otklik = Otklik.build(Settings())
        try:
            await otklik.start()
            if recompute:
                await aggregate.recompute(
                    otklik.db, aggregate.counters_of(otklik.capabilities), await aggregate.schedule_of(otklik.db)
                )
            data = (await report(otklik.db, filters, kinds=list(otklik.channel_kinds))).json()
        finally:
            await otklik.close()
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            for line in lines(data):
                console.print(line, highlight=False, markup=False)

    run_command(go())
