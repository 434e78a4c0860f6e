"""Offline understanding of buyer messages (Russian and Spanish): intents, entities and red flags.

Public API (imported lazily, so that `otklik.conversations.nlu.text` stays light for other packages):

- `load_classifier(pack_dir, cache_dir=None, force=False) -> OfflineClassifier`
- `train_from_examples(examples, language="ru", threshold=0.45, red_flags=(), default_region=None,
  concepts=None) -> OfflineClassifier`
- `OfflineClassifier.understand(text, language=None, now=None) -> Understanding`
- `extract_entities(text, language="ru", now=None, region=None) -> list[Entity]`
- `normalize`, `tokens`, `lemmas` in `otklik.conversations.nlu.text`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "OfflineClassifier",
    "extract_entities",
    "lemmas",
    "load_classifier",
    "normalize",
    "tokens",
    "train_from_examples",
]

_WHERE = {
    "OfflineClassifier": "otklik.conversations.nlu.classifier",
    "load_classifier": "otklik.conversations.nlu.classifier",
    "train_from_examples": "otklik.conversations.nlu.classifier",
    "extract_entities": "otklik.conversations.nlu.entities",
    "lemmas": "otklik.conversations.nlu.text",
    "normalize": "otklik.conversations.nlu.text",
    "tokens": "otklik.conversations.nlu.text",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use."""
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'otklik.conversations.nlu' has no attribute {name!r}")
