"""Pure slot arithmetic: the free starts of a service with a staff member, on a 15-minute grid.

A staff member's week, breaks (the gaps between a day's intervals), days off (the schedule's `holidays`)
and time zone are a `platform.business_hours.Schedule`; the salon's own holidays are one more set of
dates. Slots are computed on demand and never stored: a start is offered when the service fits inside one
working interval, the start is at least `min_notice` after `now`, and [start, start + duration + buffer)
overlaps no busy span (other bookings, each with its own buffer). Never in the past."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from otklik.platform.business_hours import DAY, Schedule, parse_schedule

GRID_MIN = 15
MAX_DAYS = 62  # how far ahead one query may look


@dataclass(frozen=True, slots=True)
class Span:
    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


def _local(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The UTC moment of a local wall time (a time skipped by a DST jump: the first one after it)."""
    if minutes >= DAY:
        day, minutes = day + timedelta(days=1), minutes - DAY
    naive = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
    for _ in range(180):
        moment = naive.replace(tzinfo=zone).astimezone(UTC)
        if moment.astimezone(zone).replace(tzinfo=None) == naive:
            return moment
        naive += timedelta(minutes=1)
    return moment


def load_hours(data: Any) -> Schedule:
    """A staff member's stored hours (validated on save with `parse_schedule`; parsed once per distinct value)."""
    return _parsed(json.dumps(data, sort_keys=True, default=str))


@lru_cache(maxsize=512)
def _parsed(text: str) -> Schedule:
    return parse_schedule(json.loads(text))


def free_slots(
    hours: Schedule,
    *,
    duration_min: int,
    buffer_min: int,
    busy: Iterable[Span],
    first_day: date,
    days: int,
    now: datetime,
    min_notice: timedelta = timedelta(0),
    closed: frozenset[date] = frozenset(),
    grid_min: int = GRID_MIN,
) -> list[datetime]:
    """The free starts (UTC, ascending) on local days `first_day` .. `first_day + days - 1` of `hours`' zone."""
    if duration_min <= 0 or buffer_min < 0 or days <= 0:
        return []
    zone = hours.zone
    earliest = now + min_notice
    spans: Sequence[Span] = sorted(busy, key=lambda s: s.start)
    length = timedelta(minutes=duration_min)
    occupied = timedelta(minutes=duration_min + buffer_min)
    out: list[datetime] = []
    for offset in range(min(days, MAX_DAYS)):
        day = first_day + timedelta(days=offset)
        if day in hours.holidays or day in closed:
            continue
        for interval in hours.week[day.weekday()]:
            end_min = interval.end + (DAY if interval.overnight else 0)
            close = _local(day, end_min, zone)
            opening = _local(day, interval.start, zone)
            near = [s for s in spans if s.start < close + occupied and s.end > opening]  # this interval's only
            minute = -(-interval.start // grid_min) * grid_min  # the first grid line inside the interval
            while minute < end_min:
                start = _local(day, minute, zone)
                minute += grid_min
                if start + length > close:
                    break
                if start < earliest:
                    continue
                if any(s.overlaps(start, start + occupied) for s in near):
                    continue
                if not out or out[-1] < start:
                    out.append(start)
    return out


def on_grid(moment: datetime, zone: ZoneInfo, grid_min: int = GRID_MIN) -> bool:
    local = moment.astimezone(zone)
    return local.second == 0 and local.microsecond == 0 and local.minute % grid_min == 0
