"""Reading and validating a pack's `intents.yaml` (intents with examples, red flags, threshold)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import otklik
from otklik.core import safe_yaml

__all__ = ["DEFAULT_THRESHOLD", "PackData", "PackError", "load_pack", "pack_dir", "parse_pack"]

DEFAULT_THRESHOLD = 0.45
INTENTS_FILE = "intents.yaml"


class PackError(ValueError):
    """The pack's intents file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class PackData:
    """The NLU part of a pack: language, threshold, phone region, red-flag terms and intent examples."""

    language: str
    examples: dict[str, list[str]]
    threshold: float = DEFAULT_THRESHOLD
    default_region: str = "RU"
    red_flags: tuple[str, ...] = ()
    descriptions: dict[str, str] = field(default_factory=dict)
    concepts: dict[str, list[str]] = field(default_factory=dict)
    digest: str = ""

    @property
    def intents(self) -> list[str]:
        """Intent names in file order."""
        return list(self.examples)


def pack_dir(name: str) -> Path:
    """The folder of a built-in pack: `otklik/packs/<name>/`."""
    return Path(otklik.__file__).resolve().parent / "packs" / name


def _as_str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise PackError(f"{what} must be a list of strings")
    return [str(v).strip() for v in value if str(v).strip()]


def _parse_intents(raw: Any) -> tuple[dict[str, list[str]], dict[str, str]]:
    if not isinstance(raw, dict) or not raw:
        raise PackError("'intents' must be a non-empty mapping of intent name -> {examples: [...]}")
    examples: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    for name, body in raw.items():
        if isinstance(body, list):
            body = {"examples": body}
        if not isinstance(body, dict):
            raise PackError(f"intent {name!r} must be a mapping with 'examples'")
        found = _as_str_list(body.get("examples"), f"intents.{name}.examples")
        if not found:
            raise PackError(f"intent {name!r} has no examples")
        examples[str(name)] = found
        descriptions[str(name)] = str(body.get("description", "") or "")
    return examples, descriptions


def _parse_concepts(raw: Any) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PackError("'concepts' must be a mapping of group name -> list of terms")
    return {str(name): _as_str_list(terms, f"concepts.{name}") for name, terms in raw.items()}


def parse_pack(text: str) -> PackData:
    """Parse the YAML text of an intents file; raises PackError with a readable reason."""
    try:
        doc = safe_yaml.load_trusted(text)
    except yaml.YAMLError as exc:
        raise PackError(f"invalid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise PackError("the intents file must be a YAML mapping")
    examples, descriptions = _parse_intents(doc.get("intents"))
    threshold = doc.get("threshold", DEFAULT_THRESHOLD)
    if not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        raise PackError("'threshold' must be a number between 0 and 1")
    return PackData(
        language=str(doc.get("language", "ru")),
        examples=examples,
        threshold=float(threshold),
        default_region=str(doc.get("default_region", "RU")).upper(),
        red_flags=tuple(_as_str_list(doc.get("red_flags"), "red_flags")),
        descriptions=descriptions,
        concepts=_parse_concepts(doc.get("concepts")),
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def load_pack(directory: Path) -> PackData:
    """Load `<directory>/intents.yaml`."""
    path = Path(directory) / INTENTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PackError(f"no {INTENTS_FILE} in {directory}") from exc
    return parse_pack(text)
