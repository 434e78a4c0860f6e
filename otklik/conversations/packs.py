"""Loading packs from `otklik/packs/<name>/`: pack.yaml, flows/*.yaml and the intent classifier."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from otklik.core import safe_yaml
from otklik.core.errors import InvalidInput, NotFound
from otklik.core.packs import PackConfig
from otklik.core.understanding import IntentClassifier, KeywordClassifier

log = logging.getLogger(__name__)
PACKS_DIR = Path(__file__).resolve().parent.parent / "packs"


@dataclass(slots=True)
class Pack:
    config: PackConfig
    directory: Path
    flow_sources: dict[str, str] = field(default_factory=dict)  # flow id -> YAML
    keywords: dict[str, list[str]] = field(default_factory=dict)


def available_packs(extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    return sorted({p.name for root in (PACKS_DIR, *extra_dirs) for p in root.iterdir() if (p / "pack.yaml").exists()})


def load_pack(name: str, extra_dirs: tuple[Path, ...] = ()) -> Pack:
    """Packs ship in `otklik/packs/`; a seller's own packs live in `extra_dirs` (setting `packs_dirs`)."""
    if "/" in name or "\\" in name or ".." in name:
        raise NotFound(f"unknown pack {name!r}")
    directory = next((root / name for root in (PACKS_DIR, *extra_dirs) if (root / name / "pack.yaml").exists()), None)
    if directory is None:
        raise NotFound(f"unknown pack {name!r}; available: {', '.join(available_packs(extra_dirs))}")
    data = _read_yaml(directory / "pack.yaml")
    words: dict[str, tuple[str, ...]] = {
        key: tuple(str(w).lower() for w in data[key])
        for key in ("operator_words", "stop_words", "resubscribe_words")
        if key in data
    }
    repair = data.get("repair") or {}
    if not isinstance(repair, dict):
        raise InvalidInput("pack.yaml: repair must be a mapping")
    phrases = {
        key: tuple(str(w) for w in repair[key])
        for key in ("cancel_words", "skip_phrases", "yes_words", "no_words")
        if isinstance(repair.get(key), list)
    }
    numbers = {
        key: float(repair[key])
        for key in ("interrupt_confidence", "interrupt_margin", "stack_timeout")
        if repair.get(key) is not None
    }
    config = PackConfig(
        id=str(data["id"]),
        language=str(data.get("language", "ru")),
        default_flow=str(data["default_flow"]),
        region=str(data.get("region", "RU")),
        deep_links={str(k): str(v) for k, v in (data.get("deep_links") or {}).items()},
        threshold=float(data.get("threshold", 0.5)),
        texts=dict(data.get("texts") or {}),
        languages=tuple(str(x) for x in data.get("languages") or ()),
    )
    config = replace(config, **phrases, **numbers)  # type: ignore[arg-type]
    if repair.get("stack_depth") is not None:
        config = replace(config, stack_depth=max(1, min(int(repair["stack_depth"]), 5)))
    if "operator_words" in words:
        config = replace(config, operator_words=words["operator_words"])
    if "stop_words" in words:
        config = replace(config, stop_words=words["stop_words"])
    if "resubscribe_words" in words:
        config = replace(config, resubscribe_words=words["resubscribe_words"])
    sources = {}
    for path in sorted((directory / "flows").glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        parsed = _parsed(str(path), text)
        flow_id = str((parsed.get("id") if isinstance(parsed, dict) else None) or path.stem)
        sources[flow_id] = text
    keywords = {str(k): [str(w) for w in v] for k, v in (data.get("keywords") or {}).items()}
    return Pack(config, directory, sources, keywords)


def build_classifier(pack: Pack, cache_dir: Path, mode: str = "auto") -> IntentClassifier:
    """The offline classifier when the pack has intents and it loads; the keyword matcher otherwise."""
    if mode == "auto" and (pack.directory / "intents.yaml").exists():
        try:
            from otklik.conversations.nlu.classifier import load_classifier

            classifier: IntentClassifier = load_classifier(pack.directory, cache_dir / "nlu")
            return classifier
        except ImportError:
            log.warning("offline NLU is not installed; using keywords for %s", pack.config.id)
        except ValueError as exc:  # a malformed intents.yaml must not take the bot down
            log.error("intents of pack %s are invalid (%s); using keywords until fixed", pack.config.id, exc)
    return KeywordClassifier(pack.keywords)


@lru_cache(maxsize=256)
def _parsed(path: str, text: str) -> Any:
    """A pack file's YAML, parsed once per process for the same text (every app start and reload reads the
    packs again). Callers only read the result: `_read_yaml` hands out a copy."""
    return safe_yaml.load_trusted(text)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = _parsed(str(path), path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path.name}: YAML syntax error: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name}: expected a mapping")
    return copy.deepcopy(data)


def intent_descriptions(pack: Pack) -> dict[str, str]:
    """Intent name -> description from intents.yaml (what the LLM is told the intents mean)."""
    path = pack.directory / "intents.yaml"
    if not path.exists():
        return {}
    try:
        data = _read_yaml(path)
    except InvalidInput:
        return {}
    intents = data.get("intents") or {}
    return {str(k): str((v or {}).get("description") or k) for k, v in intents.items() if isinstance(v, dict)}
