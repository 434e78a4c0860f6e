"""`/api/v1/flows`: list, get, publish a new version through the flow store (validated, versioned, audited)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik

NEW_FLOW = """id: api.hello
name: Hello from the API
start: hi
nodes:
  hi: {type: message, text: "hola"}
"""


async def test_list_get_and_publish(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    read = await token("flows.read")
    write = await token("flows.read,flows.write", name="ci")
    listed = (await http.get("/api/v1/flows", headers=read)).json()
    assert "care.main" in [f["id"] for f in listed["data"]] and listed["next_cursor"] is None
    main = (await http.get("/api/v1/flows/care.main", headers=read)).json()
    assert main["active"] is True and main["source"].startswith("id: care.main")
    changed = main["source"].replace("name: Главное меню", "name: Меню")
    saved = await http.post("/api/v1/flows/care.main/versions", json={"source": changed}, headers=write)
    assert saved.status_code == 201, saved.text
    assert saved.json() == {"id": "care.main", "version": main["version"] + 1, "active": True, "pack": "care-ru"}
    live = (await http.get("/api/v1/flows/care.main", headers=read)).json()
    assert live["version"] == main["version"] + 1 and "name: Меню" in live["source"]
    assert [v["version"] for v in live["versions"]][:2] == [main["version"] + 1, main["version"]]
    old = (await http.get("/api/v1/flows/care.main", params={"version": main["version"]}, headers=read)).json()
    assert old["active"] is False and "Главное меню" in old["source"]
    draft = await http.post("/api/v1/flows/care.main/versions", json={"source": main["source"], "publish": False},
                            headers=write)  # fmt: skip
    assert draft.status_code == 201 and draft.json()["active"] is False
    async with otklik.db.read() as session:
        actors = (await session.execute(select(EventLog.actor).where(EventLog.kind == "flow.saved"))).scalars().all()
    assert actors == ["api:ci", "api:ci"]
    assert (
        await http.post("/api/v1/flows/care.main/versions", json={"source": changed}, headers=read)
    ).status_code == 403


async def test_new_flows_and_refusals(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    write = await token("flows.read,flows.write")
    url = "/api/v1/flows/api.hello/versions"
    no_pack = await http.post(url, json={"source": NEW_FLOW}, headers=write)
    assert no_pack.status_code == 422 and no_pack.json()["error"] == "pack"
    unknown_pack = await http.post(url, json={"source": NEW_FLOW, "pack": "nope"}, headers=write)
    assert unknown_pack.status_code == 422 and unknown_pack.json()["error"] == "pack"
    made = await http.post(url, json={"source": NEW_FLOW, "pack": "care-ru"}, headers=write)
    assert made.status_code == 201 and made.json()["version"] == 1
    broken = NEW_FLOW.replace('hi: {type: message, text: "hola"}', "hi: {type: message, text: hola, next: nowhere}")
    invalid = await http.post(url, json={"source": broken}, headers=write)
    assert invalid.status_code == 422 and invalid.json()["error"] == "source"
    assert invalid.json()["issues"] and all(
        {"flow", "node", "field", "message"} <= set(i) for i in invalid.json()["issues"]
    )
    other_id = await http.post("/api/v1/flows/care.main/versions", json={"source": NEW_FLOW}, headers=write)
    assert other_id.status_code == 422 and other_id.json()["error"] == "source"
    for bad in (
        {"source": ""},
        {"source": 5},
        {"source": "x" * (256 * 1024 + 1)},
        {"source": NEW_FLOW, "publish": "yes"},
    ):
        refused = await http.post(url, json=bad, headers=write)
        assert refused.status_code in (413, 422), refused.text
    yaml_bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    bomb = await http.post(url, json={"source": yaml_bomb}, headers=write)
    assert bomb.status_code == 422 and bomb.json()["error"] == "source"
    versions = (await http.get("/api/v1/flows/api.hello", headers=write)).json()["versions"]
    assert [v["version"] for v in versions] == [1]  # nothing of the refused sources was stored
