"""`otklik guard check [--json] [TEXT]`: the marketplace guard on one text, or on standard input line by line.

Plain output: `allowed` or `blocked: <reasons>` and the spans found (for one TEXT), or one line per input
line `allowed|blocked <TAB> reasons <TAB> "text"` (the text JSON-quoted: no control character reaches the
terminal). `--json`: one object per line, `{"text", "allowed", "reasons"}`. Exit status: 0 when every text
is allowed, 1 when one is blocked, 2 on a usage error.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, BinaryIO

import typer

from otklik.core import guard as rules

app = typer.Typer(
    help="The marketplace guard: what may be written in a marketplace's buyer chat.", no_args_is_help=True
)

#: a line longer than this is not read into memory: it is reported as `too_long`
MAX_LINE_BYTES = 4 * rules.MAX_CHARS + 4


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _read_lines(stream: BinaryIO) -> list[tuple[str | None, str | None]]:
    """(text, warning) per line; text None for a line too long to read (its bytes are skipped)."""
    out: list[tuple[str | None, str | None]] = []
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES)
        if not raw:
            return out
        number += 1
        if not raw.endswith(b"\n") and len(raw) >= MAX_LINE_BYTES:
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_BYTES)
            out.append((None, f"line {number}: longer than {MAX_LINE_BYTES} bytes, not read (too_long)"))
            continue
        raw = raw.rstrip(b"\n").rstrip(b"\r")
        try:
            out.append((raw.decode("utf-8"), None))
        except UnicodeDecodeError:
            out.append((raw.decode("utf-8", errors="replace"), f"line {number}: not UTF-8, undecodable bytes replaced"))


@app.command("check")
def check(
    text: Annotated[
        str | None, typer.Argument(help="the text to check; none: one text per line of standard input")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line: text, allowed, reasons")] = False,
) -> None:
    """Check texts against the marketplace's chat rules (contacts, links, messengers, invitations to move,
    requests for personal data, one-word answers, insults, negative words about the marketplace)."""
    if text is not None:
        verdict = rules.check(text)
        if as_json:
            typer.echo(
                json.dumps(
                    {"text": text, "allowed": verdict.allowed, "reasons": list(verdict.reasons)}, ensure_ascii=False
                )
            )
        elif verdict.allowed:
            typer.echo("allowed")
        else:
            typer.echo("blocked: " + ", ".join(verdict.reasons))
            for span in verdict.spans:
                typer.echo(f"  {span.reason}\t[{span.start}:{span.end}]\t{_quoted(span.text)}")
        raise typer.Exit(0 if verdict.allowed else 1)
    blocked = False
    for line, warning in _read_lines(sys.stdin.buffer):
        if warning:
            typer.echo(warning, err=True)
        if line is None:
            allowed, reasons, shown = False, ["too_long"], ""
        else:
            verdict = rules.check(line)
            allowed, reasons, shown = verdict.allowed, list(verdict.reasons), line
        blocked = blocked or not allowed
        if as_json:
            typer.echo(json.dumps({"text": shown, "allowed": allowed, "reasons": reasons}, ensure_ascii=False))
        else:
            typer.echo(f"{'allowed' if allowed else 'blocked'}\t{','.join(reasons)}\t{_quoted(shown)}")
    raise typer.Exit(1 if blocked else 0)
