"""`otklik chat`: the console channel driving the full runtime (ingest, outbox, dispatcher)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from otklik.bootstrap import Otklik
from otklik.channels.console.sender import ConsoleSender
from otklik.config import Settings
from otklik.core.messages import Button, EventKind, InboundEvent, match_choice

# The turn labels in the pack's language (a Spanish pack is not chatted with in Russian).
LABELS = {"ru": ("вы", "бот"), "es": ("tú", "bot"), "en": ("you", "bot")}


def labels(pack: str, extra_dirs: tuple[Path, ...] = ()) -> tuple[str, str]:
    """(buyer, bot) labels for the pack's language; English for a language without its own."""
    from otklik.conversations.packs import load_pack

    return LABELS.get(load_pack(pack, extra_dirs).config.language, LABELS["en"])


async def chat_loop(settings: Settings, pack: str) -> None:
    you, bot = labels(pack, settings.packs_dirs)
    otklik = Otklik.build(settings)
    await otklik.start()
    account_id = await otklik.ensure_account("console", "console", pack)
    await otklik.reload()
    sender = ConsoleSender(lambda text: print(f"{bot}: {text}", flush=True))
    otklik.ctx.senders[account_id] = sender
    counter = itertools.count(1)
    try:
        await _say(otklik, InboundEvent(account_id, "start", "console", EventKind.TEXT, text="/start"))
        while True:
            try:
                line = await asyncio.to_thread(input, f"{you}: ")
            except EOFError:
                break
            text = line.strip()
            if not text:
                continue
            buttons = tuple(Button(t, p) for t, p in sender.last_buttons)
            chosen = match_choice(text, buttons) if buttons else None
            n = next(counter)
            event = (
                InboundEvent(account_id, f"m{n}", "console", EventKind.BUTTON, payload=chosen.payload)
                if chosen
                else InboundEvent(account_id, f"m{n}", "console", EventKind.TEXT, text=text[:4096])
            )
            await _say(otklik, event)
    finally:
        await otklik.close()


async def _say(otklik: Otklik, event: InboundEvent) -> None:
    await otklik.ingest(event)
    for _ in range(20):  # drain replies and any actions they started
        sent = await otklik.dispatcher.run_once()
        fired = await otklik.timers.run_once()
        if not sent and not fired:
            await asyncio.sleep(0.05)
            if not await otklik.dispatcher.run_once():
                break
