"""The gallery behind "New flow from a template": small ready scenarios (`gallery_flows/*.yaml`) and
copies of the packs' flows. A template becomes an editable copy under a new id; the copy keeps the
original's comments (the id, name and `goto`-free text are changed with `textpatch`, nothing else)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from otklik.core.flows.textpatch import load, patch

FOLDER = Path(__file__).parent / "gallery_flows"


@dataclass(frozen=True, slots=True)
class Template:
    key: str  # "ready:nps" or "pack:care.main"
    name: str
    description: str
    source: str


def ready() -> list[Template]:
    """The ready scenarios shipped with otklik, by file name."""
    out = []
    for path in sorted(FOLDER.glob("*.yaml")):
        source = path.read_text(encoding="utf-8")
        doc = load(source)
        out.append(
            Template(f"ready:{path.stem}", str(doc.get("name", path.stem)), str(doc.get("description", "")), source)
        )
    return out


def copy_of(source: str, new_id: str, suffix: str = " (copy)") -> str:
    """`source` as a new flow `new_id`; its name gets `suffix`. Everything else stays byte for byte."""
    doc = load(source)
    if not isinstance(doc, dict):
        raise ValueError("a flow template must be a mapping")
    doc = {**doc, "id": new_id}
    if suffix and isinstance(doc.get("name"), str) and doc["name"]:
        doc["name"] = doc["name"] + suffix
    return patch(source, doc)


def free_id(base: str, taken: set[str]) -> str:
    """`base`, or `base_2`, `base_3`… — the first id not taken (ids are lower-case dotted words)."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate
