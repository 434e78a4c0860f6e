"""Round robin and rules: order, fairness across restarts, concurrency (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from otklik.bootstrap import Otklik
from otklik.platform.staff.assign import assign
from otklik.platform.staff.members import add_member, update_member
from tests.conftest import make_settings


async def _assign(app: Otklik, pack: str, keys: tuple[str, ...] = ()) -> str | None:
    async with app.db.write() as session:
        member = await assign(session, pack, keys=keys)
    return None if member is None else member.name


async def test_round_robin_order_skips_inactive_and_other_packs(otklik: Otklik) -> None:
    assert await _assign(otklik, "sales-es") is None  # nobody yet
    await add_member(otklik.db, "Ana", email="ana@microcom.example", packs="sales-es", actor="test")
    bruno = await add_member(otklik.db, "Bruno", telegram_chat_id="1001", actor="test")  # every pack
    await add_member(otklik.db, "Carla", email="carla@microcom.example", packs="sales-es", actor="test")
    await add_member(otklik.db, "Dmitri", email="d@shop.example", packs="care-ru", actor="test")
    names = [await _assign(otklik, "sales-es") for _ in range(6)]
    assert names == ["Ana", "Bruno", "Carla", "Ana", "Bruno", "Carla"]
    assert [await _assign(otklik, "care-ru") for _ in range(3)] == ["Bruno", "Dmitri", "Bruno"]
    await update_member(otklik.db, bruno.id, active=False, actor="test")
    assert [await _assign(otklik, "sales-es") for _ in range(3)] == ["Ana", "Carla", "Ana"]


async def test_rotation_survives_a_restart(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url)
    first = Otklik.build(settings)
    await first.start()
    try:
        for name in ("Ana", "Bruno", "Carla"):
            await add_member(first.db, name, telegram_chat_id="77", actor="test")
        before = [await _assign(first, "sales-es") for _ in range(4)]
    finally:
        await first.close()
    second = Otklik.build(settings)
    await second.start()
    try:
        after = [await _assign(second, "sales-es") for _ in range(5)]
    finally:
        await second.close()
    assert before == ["Ana", "Bruno", "Carla", "Ana"]
    assert after == ["Bruno", "Carla", "Ana", "Bruno", "Carla"]  # goes on where it stood
    assert Counter(before + after) == {"Ana": 3, "Bruno": 3, "Carla": 3}


async def test_rule_keys_pick_the_named_members_in_their_own_rotation(otklik: Otklik) -> None:
    await add_member(otklik.db, "Ana", telegram_chat_id="1", actor="test")
    await add_member(otklik.db, "Nico", telegram_chat_id="2", rules="category:nvr, brand:hikvision", actor="test")
    await add_member(otklik.db, "Olga", telegram_chat_id="3", rules="category:nvr", actor="test")
    assert [await _assign(otklik, "sales-es", ("category:nvr",)) for _ in range(3)] == ["Nico", "Olga", "Nico"]
    assert await _assign(otklik, "sales-es", ("brand:dahua", "BRAND:HIKVISION")) == "Nico"  # first key with members
    assert [await _assign(otklik, "sales-es", ("category:disk",)) for _ in range(3)] == ["Ana", "Nico", "Olga"]


async def test_concurrent_assignments_are_fair(otklik: Otklik) -> None:
    for name in ("Ana", "Bruno", "Carla"):
        await add_member(otklik.db, name, email=f"{name.lower()}@microcom.example", actor="test")
    names = await asyncio.gather(*(_assign(otklik, "sales-es") for _ in range(30)))
    assert Counter(names) == {"Ana": 10, "Bruno": 10, "Carla": 10}  # no two transactions read the same place
