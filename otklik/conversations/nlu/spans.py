"""Bookkeeping of entity spans found in a message, so that extractors never claim the same characters."""

from __future__ import annotations

from dataclasses import dataclass, field

from otklik.core.understanding import Entity

__all__ = ["Claimed", "Found"]


@dataclass(frozen=True, slots=True)
class Found:
    """A candidate entity: `start`/`end` cover the whole match; `text_start` trims a leading keyword."""

    kind: str
    value: str
    start: int
    end: int
    text_start: int = -1


@dataclass(slots=True)
class Claimed:
    """Accepted candidates; a new one is accepted only if it overlaps none of them."""

    items: list[Found] = field(default_factory=list)

    def free(self, start: int, end: int) -> bool:
        """True when [start, end) overlaps no accepted span."""
        return all(end <= f.start or start >= f.end for f in self.items)

    def add(self, found: Found) -> bool:
        """Accept `found` if its span is free; return whether it was accepted."""
        if not self.free(found.start, found.end):
            return False
        self.items.append(found)
        return True

    def entities(self, text: str) -> list[Entity]:
        """The accepted candidates as core `Entity` objects, ordered by position."""
        result = []
        for f in sorted(self.items, key=lambda item: item.start):
            start = f.text_start if f.text_start >= 0 else f.start
            result.append(Entity(kind=f.kind, value=f.value, text=text[start : f.end], start=start, end=f.end))
        return result
