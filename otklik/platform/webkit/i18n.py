"""Admin UI texts in Russian, English and Spanish, from `locales/*.yaml` (one file per admin area).

Each file maps a key to its texts: `inbox.title: {ru: Входящие, en: Inbox, es: Bandeja}`. A missing
language falls back to English, a missing key shows the key (and a test checks that none is missing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from otklik.core import safe_yaml
from otklik.platform.webkit.paths import LOCALES

LANGUAGES = ("ru", "en", "es")
_folders: tuple[Path, ...] = (LOCALES,)


def add_locale_folders(folders: Sequence[Path]) -> None:
    """Capabilities' own admin strings (`Capability.locales`); a key defined twice is refused."""
    global _folders
    new = tuple(f for f in folders if f not in _folders)
    if new:
        _folders = (*_folders, *new)
        catalog.cache_clear()


@cache
def catalog() -> dict[str, dict[str, str]]:
    """The strings of the shared folder and of every folder added so far (`add_locale_folders`)."""
    return load_catalog(_folders)


def load_catalog(folders: Sequence[Path]) -> dict[str, dict[str, str]]:
    """Every `<area>.yaml` of `folders`, merged and checked (a test reads every declared folder with it)."""
    merged: dict[str, dict[str, str]] = {}
    for path in [p for folder in folders for p in sorted(folder.glob("*.yaml"))]:
        data = safe_yaml.load_trusted(path.read_text(encoding="utf-8")) or {}
        for key, texts in data.items():
            # YAML 1.1 reads a bare `yes:` as True and `{ru: A, B, en: …}` as a key "B" without text:
            # both left a raw key on the page, so anything but string keys and string texts is refused.
            if not isinstance(key, str):
                raise ValueError(f"{path.name}: key {key!r} is not a string (quote it)")
            if key in merged:
                raise ValueError(f"{path.name}: key {key!r} is defined twice")
            if not isinstance(texts, dict):
                raise ValueError(f"{path.name}: key {key!r} needs ru/en/es texts")
            bad = [lang for lang, text in texts.items() if lang not in LANGUAGES or not isinstance(text, str)]
            if bad:
                raise ValueError(f"{path.name}: key {key!r}: {bad!r} is not a language with a text (quote commas)")
            merged[str(key)] = {str(lang): str(text) for lang, text in texts.items()}
    return merged


def translator(language: str) -> Callable[..., str]:
    lang = language if language in LANGUAGES else "en"
    texts = catalog()

    def t(key: str, **values: Any) -> str:
        entry = texts.get(key)
        if entry is None:
            return key
        text = entry.get(lang) or entry.get("en") or key
        return text.format(**values) if values else text

    return t
