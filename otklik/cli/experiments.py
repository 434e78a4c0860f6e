"""`otklik surveys validate|install|results|export` and `otklik abtests results` (docs/outreach.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from otklik.cli.users import _run
from otklik.core.errors import FlowInvalid

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

surveys_app = typer.Typer(help="Survey trees: validate, install as a flow, results, CSV export.", no_args_is_help=True)
abtests_app = typer.Typer(help="A/B tests: results per variant.", no_args_is_help=True)
MAX_FILE = 64_000


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE:
            typer.echo(f"error: {path} is larger than {MAX_FILE} bytes", err=True)
            raise typer.Exit(2)
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error: cannot read {path}: {exc.__class__.__name__}", err=True)
        raise typer.Exit(2) from None


def _refuse(exc: FlowInvalid) -> NoReturn:
    for issue in exc.errors:
        typer.echo(f"  {issue}", err=True)
    typer.echo(f"error: the survey is invalid ({len(exc.errors)} problem(s)); nothing was installed", err=True)
    raise typer.Exit(1)


@surveys_app.command("validate")
def validate(path: Annotated[Path, typer.Argument(help="a survey tree (YAML)")]) -> None:
    """Check a survey tree without a database: cycles, dangling options, option counts, title lengths."""
    from otklik.core.survey import compile_survey, parse_survey_yaml

    try:
        tree = parse_survey_yaml(_read(path))
        flow = compile_survey(tree)
    except FlowInvalid as exc:
        _refuse(exc)
    typer.echo(f"ok: survey {tree.id} ({len(tree.questions)} questions) -> flow {flow.id} ({len(flow.nodes)} nodes)")


@surveys_app.command("install")
def install(
    path: Annotated[Path, typer.Argument(help="a survey tree (YAML)")],
    pack: Annotated[str, typer.Option("--pack", help="the pack whose conversations run it")] = "",
) -> None:
    """Publish the survey as the flow `survey.<id>` (validated, versioned and audited like an edit)."""
    from otklik.core.survey import compile_survey, parse_survey_yaml

    source = _read(path)
    try:  # refused with every problem listed, before any database is opened
        compile_survey(parse_survey_yaml(source))
    except FlowInvalid as exc:
        _refuse(exc)

    async def go(otk: Otklik) -> Any:
        from otklik.conversations.surveys import install as install_survey

        return await install_survey(otk.flows, source, pack=pack or otk.settings.default_pack, author="cli")

    tree, info = _run(go)
    typer.echo(f"installed {info.flow_key} v{info.version} (survey {tree.id})")


@surveys_app.command("results")
def results(
    survey: Annotated[str, typer.Argument(help="the survey id")],
    source: Annotated[str | None, typer.Option("--source", help="one run only, e.g. winback:3")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Per question, how many chose each option."""

    async def go(otk: Otklik) -> Any:
        from otklik.conversations.surveys import distribution

        async with otk.db.read() as session:
            return await distribution(session, survey, source)

    counts = _run(go)
    if as_json:
        typer.echo(json.dumps({q: dict(rows) for q, rows in counts.items()}, ensure_ascii=False))
        return
    if not counts:
        typer.echo(f"no answers to survey {survey[:80]!r}")
    for question, rows in counts.items():
        total = sum(n for _, n in rows)
        typer.echo(f"{question} ({total})")
        for option, n in rows:
            typer.echo(f"  {option}\t{n}\t{n / total:.0%}")


@surveys_app.command("export")
def export(
    survey: Annotated[str, typer.Argument(help="the survey id")],
    source: Annotated[str | None, typer.Option("--source", help="one run only")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="a file (default: standard output)")] = None,
) -> None:
    """The answers as CSV: answered_at, source, contact_id, question, option, text."""

    async def go(otk: Otklik) -> int:
        from otklik.conversations.surveys import csv_rows

        target = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        lines = -1
        try:
            async with otk.db.read() as session:
                async for chunk in csv_rows(session, survey, source):
                    target.write(chunk)
                    lines += chunk.count("\n")
        finally:
            if output:
                target.close()
        return lines

    lines = _run(go)
    if output:
        typer.echo(f"{lines} answers written to {output}", err=True)


@abtests_app.command("results")
def abtest_results(
    key: Annotated[str, typer.Argument(help="the test id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Per variant: sample, conversions, rate with its 95 % interval, p-value against the first variant."""

    async def go(otk: Otklik) -> Any:
        from otklik.conversations.abtests import test_results
        from otklik.platform.plugins import resolve

        counters = {c.name: c.fn for cap in otk.capabilities if cap.counters for c in resolve(cap.counters)}
        async with otk.db.read() as session:
            return await test_results(session, key[:80], counters)

    found = _run(go)
    rows = [
        {"variant": v.variant, "sample": v.sample, "conversions": v.conversions, "rate": round(v.rate, 6),
         "low": round(v.low, 6), "high": round(v.high, 6),
         "p_value": None if v.p_value is None else round(v.p_value, 6), "significant": v.significant}
        for v in found.variants
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"test": found.key, "goal": found.goal, "status": found.status, "kept": found.kept,
                               "note": found.note, "variants": rows}, ensure_ascii=False))  # fmt: skip
        return
    typer.echo(
        f"{found.key}: goal {found.goal.get('kind')}, {found.status}" + (f", kept {found.kept}" if found.kept else "")
    )
    if found.note:
        typer.echo(f"note: {found.note}")
    for r in rows:
        p = (
            "control"
            if r["p_value"] is None
            else f"p={r['p_value']:.4f}" + (" significant" if r["significant"] else "")
        )
        typer.echo(
            f"  {r['variant']}\t{r['conversions']}/{r['sample']}\t{r['rate']:.1%}"
            f"\t[{r['low']:.1%}, {r['high']:.1%}]\t{p}"
        )


__all__ = ["abtests_app", "surveys_app"]
