"""docs/webhooks.md's verification examples are real: they run against a delivery otklik signed, and the
n8n workflow's formula (HMAC of `timestamp.` + JSON.stringify(body)) gives otklik's signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

from otklik.clock import utcnow
from otklik.platform.webhooks.events import body_of, envelope
from otklik.platform.webhooks.signing import signed_headers

DOC = Path(__file__).parents[2] / "docs" / "webhooks.md"
N8N = Path(__file__).parents[2] / "docs" / "examples" / "n8n-order-confirmed.json"
SECRET = "whsec_docs-example-secret-42"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def _delivery() -> tuple[dict[str, str], bytes, str]:
    payload = envelope("0b6f1c7e-3a52-4d0e-9a43-3f0e1f8e2a11", "order.confirmed",
                       {"number": "A-0017", "total": "58900.00", "cliente": "Cámaras Ñandú S.A."}, utcnow())  # fmt: skip
    body = body_of(payload)
    headers = signed_headers(
        SECRET, body, event_id=payload["id"], event_type="order.confirmed", timestamp=int(time.time())
    )
    return headers, body, payload["id"]


def test_the_python_examples_verify_a_real_delivery() -> None:
    blocks = _python_blocks()
    handle_src = next(b for b in blocks if "def handle(" in b)
    plain_src = next(b for b in blocks if "def is_from_otklik(" in b)
    scope: dict[str, Any] = {}
    exec(compile(handle_src, "docs:handle", "exec"), scope)
    exec(compile(plain_src, "docs:is_from_otklik", "exec"), scope)
    headers, body, event_id = _delivery()
    seen: set[str] = set()
    assert scope["handle"](SECRET, headers, body, seen) == 200 and seen == {event_id}
    assert scope["handle"](SECRET, headers, body, seen) == 200 and seen == {event_id}  # a redelivery
    assert scope["handle"](SECRET, headers, body + b" ", set()) == 401
    assert scope["handle"]("whsec_someone-else-000000", headers, body, set()) == 401
    assert scope["is_from_otklik"](SECRET, headers, body) is True
    assert scope["is_from_otklik"](SECRET, headers, body.replace(b"58900", b"1")) is False
    stale = dict(headers, **{"X-Otklik-Timestamp": str(int(time.time()) - 3600)})
    assert scope["is_from_otklik"](SECRET, stale, body) is False


def test_the_n8n_formula_gives_the_signature() -> None:
    """n8n hashes `<timestamp>.` + JSON.stringify(parsed body); JSON.stringify writes compact JSON with
    non-ASCII as is — what `json.dumps(…, ensure_ascii=False, separators=(",", ":"))` writes."""
    headers, body, _ = _delivery()
    restringified = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()
    assert restringified == body
    expected = hmac.new(SECRET.encode(), headers["X-Otklik-Timestamp"].encode() + b"." + restringified, hashlib.sha256)
    assert ("v1=" + expected.hexdigest()) in headers["X-Otklik-Signature"].split()
    workflow = json.loads(N8N.read_text(encoding="utf-8"))
    crypto = next(n for n in workflow["nodes"] if n["type"] == "n8n-nodes-base.crypto")
    assert (
        crypto["parameters"]["value"] == '={{ $json.headers["x-otklik-timestamp"] }}.{{ JSON.stringify($json.body) }}'
    )
    assert crypto["parameters"]["type"] == "SHA256" and crypto["parameters"]["encoding"] == "hex"
    names = {n["name"] for n in workflow["nodes"]}
    assert set(workflow["connections"]) <= names
    assert all(t["node"] in names for outs in workflow["connections"].values() for o in outs["main"] for t in o)
