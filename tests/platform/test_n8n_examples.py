"""The importable n8n workflows and the Grafana dashboard in docs/: they parse, every otklik call they make
exists in the app's OpenAPI, the signature check is the documented recipe, every metric they chart exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from otklik.platform.prometheus import exposition

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _workflow(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((DOCS / "examples" / name).read_text(encoding="utf-8"))


def test_the_workflows_are_wired_and_call_what_exists(app) -> None:  # type: ignore[no-untyped-def]
    spec = app.openapi()
    routes = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    for name in ("n8n-conversations.json", "n8n-order-confirmed.json"):
        flow = _workflow(name)
        names = {n["name"] for n in flow["nodes"]}
        for source, outputs in flow["connections"].items():
            assert source in names
            assert all(link["node"] in names for branch in outputs["main"] for link in branch)
        for node in flow["nodes"]:
            if node["type"] == "n8n-nodes-base.crypto":
                assert (
                    node["parameters"]["value"]
                    == '={{ $json.headers["x-otklik-timestamp"] }}.{{ JSON.stringify($json.body) }}'
                )
                assert (node["parameters"]["type"], node["parameters"]["encoding"]) == ("SHA256", "hex")
            if node["type"] == "n8n-nodes-base.httpRequest":
                path = re.sub(r"^=?https?://[^/]+", "", node["parameters"]["url"])
                template = re.sub(r"\{\{[^}]*\}\}", "{conversation_id}", path)
                assert (node["parameters"]["method"], template) in routes, template
                headers = {h["name"]: h["value"] for h in node["parameters"]["headerParameters"]["parameters"]}
                assert headers["Authorization"].startswith("Bearer otk_")
                if node["parameters"]["method"] == "POST":
                    assert headers["Idempotency-Key"] == "={{ $json.body.id }}"


def test_the_grafana_dashboard_charts_metrics_that_exist() -> None:
    dashboard = json.loads((DOCS / "grafana-otklik.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(bucket|count|sum|total)$", "", m) for e in exprs for m in re.findall(r"otklik_[a-z0-9_]+", e)}
    defined = {f.name for f in text_string_to_metric_families(exposition().decode())}
    defined |= {
        "otklik_outbox_depth",
        "otklik_outbox_oldest_pending_seconds",
        "otklik_timers_due",
        "otklik_timers_late",
        "otklik_webhook_deliveries_open",
    }  # read from the database at scrape time
    assert used and used <= defined, used - defined
