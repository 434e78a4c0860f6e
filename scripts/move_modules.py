"""One-off: git mv modules to the issue-14 layout and rewrite every reference. Deleted after use."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CV, P, CH, C = "otklik.conversations", "otklik.platform", "otklik.channels", "otklik.capabilities"
MOVES: dict[str, str] = {
    # kernel shared types
    "otklik.adapters.channels.base": "otklik.core.channel",
    # channels
    "otklik.adapters.channels.console": f"{CH}.console.sender",
    "otklik.adapters.channels.telegram": f"{CH}.telegram.adapter",
    "otklik.adapters.channels.telegram_parse": f"{CH}.telegram.parse",
    "otklik.adapters.channels.telegram_polling": f"{CH}.telegram.polling",
    "otklik.adapters.channels.telegram_render": f"{CH}.telegram.render",
    "otklik.adapters.channels.webhook": f"{CH}.api.adapter",
    "otklik.runtime.telegram": f"{CH}.telegram.runtime",
    "otklik.cli.telegram": f"{CH}.telegram.cli",
    "otklik.web.webchat": f"{CH}.webchat.web",
    # adapters
    "otklik.llm.client": "otklik.adapters.llm.client",
    "otklik.care.wbaccounts": "otklik.adapters.wildberries.accounts",
    # conversations
    "otklik.llm": f"{CV}.llm",
    "otklik.knowledge": f"{CV}.knowledge",
    "otklik.nlu.cli": "otklik.cli.nlu",
    "otklik.nlu": f"{CV}.nlu",
    "otklik.runtime.knowledge": f"{CV}.knowledge.action",
    "otklik.runtime.builtin_actions": f"{CV}.builtin",
    # platform
    "otklik.runtime.audit": f"{P}.audit",
    "otklik.runtime.audit_log": f"{P}.audit_log",
    "otklik.runtime.users": f"{P}.users",
    "otklik.runtime.business_hours": f"{P}.business_hours",
    "otklik.runtime.channels": f"{P}.channel_accounts",
    "otklik.runtime.channel_admin": f"{P}.channel_admin",
    "otklik.web.params": f"{P}.webkit.params",
    "otklik.web.client_ip": f"{P}.webkit.client_ip",
    "otklik.web.admin.deps": f"{P}.webkit.deps",
    "otklik.web.admin.i18n": f"{P}.webkit.i18n",
    # capabilities
    "otklik.runtime.inbox": f"{C}.inbox.queries",
    "otklik.runtime.inbox_ops": f"{C}.inbox.service",
    "otklik.web.admin.inbox": f"{C}.inbox.admin",
    "otklik.web.admin.inbox_actions": f"{C}.inbox.admin_actions",
    "otklik.web.admin.inbox_canned": f"{C}.inbox.admin_canned",
    "otklik.care": f"{C}.care",
    "otklik.cli.wb": f"{C}.care.cli",
    "otklik.web.admin.care": f"{C}.care.admin",
    "otklik.web.admin.care_charts": f"{C}.care.admin_charts",
    "otklik.web.admin.care_replies": f"{C}.care.admin_replies",
    "otklik.cashback": f"{C}.cashback",
    "otklik.web.admin.cashback": f"{C}.cashback.admin",
    "otklik.web.admin.cashback_claims": f"{C}.cashback.admin_claims",
    "otklik.runtime.demo_data": "otklik.demo_data",
    "otklik.runtime": CV,
    # tests
    "tests.runtime.test_ingest": "tests.conversations.test_ingest",
    "tests.runtime.test_sliding_window": "tests.conversations.test_sliding_window",
    "tests.runtime.test_business_hours": "tests.platform.test_business_hours",
    "tests.runtime.test_migrations": "tests.adapters.db.test_migrations",
    "tests.runtime": "tests.conversations",
    "tests.understanding": "tests.conversations.understanding",
    "tests.nlu": "tests.conversations.nlu",
    "tests.knowledge": "tests.conversations.knowledge",
    "tests.llm": "tests.conversations.llm",
    "tests.wildberries": "tests.adapters.wildberries",
    "tests.telegram_runtime": "tests.channels.telegram.runtime",
    "tests.telegram": "tests.channels.telegram",
    "tests.cli.test_cli_telegram": "tests.channels.telegram.test_cli_telegram",
    "tests.web.test_webchat_api": "tests.channels.webchat.test_webchat_api",
    "tests.web.test_api_channel": "tests.channels.api.test_api_channel",
    "tests.admin.test_settings_channels": "tests.channels.test_settings_channels",
    "tests.admin.test_inbox": "tests.capabilities.inbox.test_inbox",
    "tests.admin.test_inbox_actions": "tests.capabilities.inbox.test_inbox_actions",
    "tests.admin.inbox_helpers": "tests.capabilities.inbox.inbox_helpers",
    "tests.admin.test_care_pages": "tests.capabilities.care.test_care_pages",
    "tests.care": "tests.capabilities.care",
    "tests.cashback": "tests.capabilities.cashback",
    "tests.cli.test_users_cli": "tests.platform.test_users_cli",
    "tests.admin.conftest": "tests.fixtures.admin",
}
KEYS = sorted(MOVES, key=len, reverse=True)


def target(module: str) -> str | None:
    for key in KEYS:
        if module == key or module.startswith(key + "."):
            return MOVES[key] + module[len(key):]
    return None


def module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


DOTTED = re.compile(r"(?<![\w.])((?:otklik|tests)(?:\.\w+)+)")
SLASHED = re.compile(r"(?<![\w/.])((?:otklik|tests)(?:/\w+)+)(\.py)?")
FROMIMP = re.compile(r"from ((?:otklik|tests)(?:\.\w+)*) import (\([^)]*\)|[^\n]+)")


def sub_dotted(m: re.Match[str]) -> str:
    name = m.group(1)
    parts = name.split(".")
    # longest prefix that is a key (a module path possibly followed by attributes)
    for i in range(len(parts), 1, -1):
        new = target(".".join(parts[:i]))
        if new is not None:
            return ".".join([new, *parts[i:]])
    return name


def sub_slashed(m: re.Match[str]) -> str:
    name, ext = m.group(1), m.group(2) or ""
    parts = name.split("/")
    for i in range(len(parts), 1, -1):
        new = target(".".join(parts[:i]))
        if new is not None:
            return "/".join([*new.split("."), *parts[i:]]) + ext
    return name + ext


def sub_from(m: re.Match[str]) -> str:
    pkg, names = m.group(1), m.group(2)
    raw = names.strip()
    paren = raw.startswith("(")
    body = raw[1:-1] if paren else raw
    comment = ""
    if not paren and "#" in body:
        body, comment = body.split("#", 1)
        comment = "  #" + comment
    items = [x.strip() for x in body.replace("\n", " ").split(",") if x.strip()]
    groups: dict[str, list[str]] = {}
    order: list[str] = []
    changed = False
    new_pkg = sub_dotted(DOTTED.match(pkg)) if DOTTED.match(pkg) else pkg  # type: ignore[arg-type]
    for item in items:
        name, _, alias = item.partition(" as ")
        name, alias = name.strip(), alias.strip()
        child = target(f"{pkg}.{name}")
        if child is not None and (f"{pkg}.{name}" in MOVES or target(pkg) is None or child.rsplit(".", 1)[0] != target(pkg)):
            parent, leaf = child.rsplit(".", 1)
            changed = True
            text = leaf if (alias or name) == leaf else f"{leaf} as {alias or name}"
        else:
            parent, text = new_pkg, item
        if parent not in groups:
            groups[parent] = []
            order.append(parent)
        groups[parent].append(text)
    if not changed:
        return f"from {new_pkg} import {names}"
    lines = [f"from {p} import {', '.join(groups[p])}" for p in order]
    return "\n".join(lines) + comment


def rewrite(text: str) -> str:
    text = FROMIMP.sub(sub_from, text)
    text = DOTTED.sub(sub_dotted, text)
    return SLASHED.sub(sub_slashed, text)


def main(dry: bool) -> None:
    files = [p for p in (ROOT / "otklik").rglob("*") if p.is_file()] + [
        p for p in (ROOT / "tests").rglob("*") if p.is_file()
    ]
    moves: list[tuple[Path, Path]] = []
    for path in files:
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT)
        if path.suffix == ".py":
            mod = module_of(path)
            new = target(mod)
            if new is None:
                continue
            dest = ROOT / Path(*new.split("."))
            dest = dest / "__init__.py" if path.name == "__init__.py" else dest.with_suffix(".py")
        else:
            # data files travel with their package folder
            parts = list(rel.parts)
            new = None
            for i in range(len(parts) - 1, 1, -1):
                t = target(".".join(parts[:i]))
                if t is not None and ".".join(parts[:i]) in MOVES:
                    new = Path(*t.split("."), *parts[i:])
                    break
            if new is None:
                continue
            dest = ROOT / new
        if dest != path:
            moves.append((path, dest))
    for src, dest in moves:
        print(f"mv {src.relative_to(ROOT)} -> {dest.relative_to(ROOT)}")
        if dry:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "mv", str(src), str(dest)], check=True, cwd=ROOT)
    if dry:
        return
    # every new package folder gets an __init__.py
    for _, dest in moves:
        d = dest.parent
        while d != ROOT and d.name not in ("otklik", "tests"):
            if d.suffix == "" and any(x.suffix == ".py" for x in d.iterdir()) and not (d / "__init__.py").exists():
                if not any(p in d.parts for p in ("data", "fixtures", "packs", "locales", "templates", "static")):
                    (d / "__init__.py").write_text("")
                    subprocess.run(["git", "add", str(d / "__init__.py")], check=True, cwd=ROOT)
            d = d.parent
    roots = [ROOT / "otklik", ROOT / "tests", ROOT / "bench", ROOT / "docs", ROOT / "scripts"]
    exts = {".py", ".md", ".toml", ".yaml", ".yml", ".html", ".cfg", ".ini", ".txt"}
    targets = [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file() and p.suffix in exts]
    targets += [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml", ROOT / "DESIGN.md"]
    for path in targets:
        if not path.exists() or "vendor" in path.parts or path.name == "move_modules.py":
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        new = rewrite(text)
        if new != text:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")


if __name__ == "__main__":
    main("--dry-run" in sys.argv)
