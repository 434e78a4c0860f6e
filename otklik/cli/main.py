"""`otklik` — run the product, chat in the terminal, validate flows, migrate the database."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from otklik.config import Settings
from otklik.core.errors import FlowInvalid, OtklikError

app = typer.Typer(help="otklik: customer-care and sales bots for small sellers.", no_args_is_help=True)
flows_app = typer.Typer(help="Validate and draw flows.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
app.add_typer(db_app, name="db")


def _mount() -> None:
    """The platform's sub-apps, then what capabilities and channel kinds declare (`cli`, `commands`)."""
    from otklik.cli.apitokens import app as api_tokens_app
    from otklik.cli.channels import app as channels_app
    from otklik.cli.contacts import app as contacts_app
    from otklik.cli.experiments import abtests_app, surveys_app
    from otklik.cli.guard import app as guard_app
    from otklik.cli.sms import app as sms_app
    from otklik.cli.staff import app as staff_app
    from otklik.cli.users import app as users_app
    from otklik.cli.webhooks import app as webhooks_app
    from otklik.platform.plugins import resolve
    from otklik.registry import CAPABILITIES, CHANNEL_KINDS

    app.add_typer(channels_app, name="channels")
    app.add_typer(users_app, name="users")
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(api_tokens_app, name="api-tokens")
    app.add_typer(webhooks_app, name="webhooks")
    app.add_typer(staff_app, name="staff")
    app.add_typer(sms_app, name="sms")
    app.add_typer(guard_app, name="guard")
    app.add_typer(surveys_app, name="surveys")
    app.add_typer(abtests_app, name="abtests")
    named = [*(c for cap in CAPABILITIES for c in cap.cli), *(c for kind in CHANNEL_KINDS for c in kind.commands)]
    for name, ref in named:
        target = resolve(ref)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


_mount()
console = Console()
err = Console(stderr=True)


def _settings(**overrides: object) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            err.print(
                f"[red]configuration error[/red] {'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
            )
        raise typer.Exit(2) from None


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port to listen on")] = None,
    role: Annotated[str, typer.Option(help="all | web | worker")] = "all",
) -> None:
    """Start the web app (web chat, webhooks, API, admin) and the worker (dispatcher + scheduler)."""
    if role not in ("all", "web", "worker"):
        err.print(f"[red]--role must be all, web or worker, not {role!r}[/red]")
        raise typer.Exit(2)
    settings = _settings(host=host, port=port)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if role == "worker":
        asyncio.run(_run_worker(settings))
        return
    sock = _listen(settings.host, settings.port)  # a busy port stops here, before anything is started
    from otklik.bootstrap import Otklik
    from otklik.web.app import create_app

    web = create_app(Otklik.build(settings), worker=role == "all")
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    if not _serve(web, sock, f"otklik on http://{shown}:{settings.port}  (web chat: /chat, admin: /admin)"):
        raise typer.Exit(3)  # the start-up (migrations, database) failed; uvicorn logged why


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket first: a busy port or a bad address is one clear line and exit code 1."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        err.print(f"[red]cannot listen on {host}:{port}: {reason}[/red] (set --port or OTKLIK_PORT)")
        raise typer.Exit(1) from None
    return sock


def _serve(web: Any, sock: socket.socket, banner: str) -> bool:
    """Serve on the bound socket; the banner is printed once the app has started and the socket listens.
    Returns whether the server started at all."""
    import uvicorn

    class BannerServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                console.print(banner)

    server = BannerServer(uvicorn.Config(web, log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return server.started


async def _run_worker(settings: Settings) -> None:
    import signal

    from otklik.bootstrap import Otklik

    otklik = Otklik.build(settings)
    await otklik.start()
    otklik.start_watchers()
    otklik.start_worker()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print("otklik worker running (dispatcher + scheduler)")
    try:
        await stop.wait()
    finally:
        await otklik.close()


@app.command()
def chat(
    pack: Annotated[str, typer.Option(help="pack to chat with")] = "care-ru",
    db: Annotated[Path | None, typer.Option(help="SQLite file (default: a temporary one)")] = None,
) -> None:
    """Chat with the bot in the terminal (same engine, console channel). Ctrl-D quits."""
    from otklik.cli.console_chat import chat_loop

    with tempfile.TemporaryDirectory(prefix="otklik-chat-") as tmp:
        data_dir = Path(tmp)
        url = f"sqlite+aiosqlite:///{(db or data_dir / 'chat.db').resolve()}"
        settings = _settings(data_dir=data_dir, database_url=url, default_pack=pack, log_level="WARNING")
        try:
            asyncio.run(chat_loop(settings, pack))
        except OtklikError as exc:
            err.print(f"[red]{exc.user_message}[/red]")
            raise typer.Exit(2) from None


@flows_app.command("validate")
def flows_validate(path: Annotated[Path, typer.Argument(help="a flow YAML file or a folder of them")]) -> None:
    """Check flows; every error is reported with flow, node and field. Exit 1 when any is invalid."""
    from otklik.core.flows.validate import parse_flow_yaml

    files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        err.print(f"[red]no flow files at {path}[/red]")
        raise typer.Exit(2)
    sources = {file: _try_read(file) for file in files}
    known = {_flow_id(f, text) for f, text in sources.items() if text is not None} | _pack_flow_ids()
    failed = 0
    for file, text in sources.items():
        if text is None:  # unreadable or not UTF-8: reported, and the other files are still checked
            failed += 1
            continue
        try:
            flow = parse_flow_yaml(text, known_flows=known)
        except FlowInvalid as exc:
            failed += 1
            for issue in exc.errors:
                console.print(f"[red]✗[/red] {file}: {issue}")
            continue
        console.print(f"[green]✓[/green] {file}: flow {flow.id} ({len(flow.nodes)} nodes)")
    raise typer.Exit(1 if failed else 0)


@flows_app.command("diagram")
def flows_diagram(
    flow_id: Annotated[str, typer.Argument(help="flow id, e.g. care.main")],
    pack: Annotated[str | None, typer.Option(help="look in this pack (default: all packs)")] = None,
) -> None:
    """Print a flow as Mermaid text."""
    from otklik.conversations.packs import available_packs, load_pack
    from otklik.core.flows.diagram import mermaid
    from otklik.core.flows.validate import parse_flow_yaml

    for name in [pack] if pack else available_packs():
        try:
            sources = load_pack(name).flow_sources
        except OtklikError as exc:
            err.print(f"[red]{exc.user_message}[/red]")
            raise typer.Exit(2) from None
        if flow_id in sources:
            sys.stdout.write(mermaid(parse_flow_yaml(sources[flow_id], known_flows=_pack_flow_ids())))
            return
    err.print(f"[red]no flow {flow_id!r}[/red]")
    raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "heads") -> None:
    """Apply database migrations, the capabilities' own included (SQLite is also migrated at start)."""
    from otklik.adapters.db.engine import Database
    from otklik.adapters.db.migrate import upgrade
    from otklik.platform.plugins import folder, import_models
    from otklik.registry import CAPABILITIES

    settings = _settings()
    import_models(CAPABILITIES)  # the Alembic environment's metadata: every table

    async def go() -> None:
        db = Database(settings.db_url)
        try:
            await upgrade(db, revision, [folder(c.migrations) for c in CAPABILITIES if c.migrations])
        finally:
            await db.dispose()

    asyncio.run(go())
    console.print(json.dumps({"upgraded_to": revision}))


def _try_read(file: Path) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        console.print(f"[red]✗[/red] {file}: not UTF-8 text (byte {exc.start}); save the file as UTF-8")
    except OSError as exc:
        console.print(f"[red]✗[/red] {file}: cannot read: {exc.strerror or exc}")
    return None


def _flow_id(file: Path, text: str) -> str:
    import yaml

    from otklik.core import safe_yaml

    try:
        data = safe_yaml.load(text)
    except (yaml.YAMLError, safe_yaml.UnsafeYaml):
        return file.stem
    return str(data.get("id")) if isinstance(data, dict) and data.get("id") else file.stem


def _pack_flow_ids() -> set[str]:
    from otklik.conversations.packs import available_packs, load_pack

    return {key for name in available_packs() for key in load_pack(name).flow_sources}


def _mount_optional() -> None:
    """Capability CLIs that live in their own packages."""
    try:
        from otklik.cli.nlu import app as nlu_app
    except ImportError:
        return
    app.add_typer(nlu_app, name="nlu", help="Offline understanding: train, predict, evaluate.")


_mount_optional()
