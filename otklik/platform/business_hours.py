"""Business hours: when operators answer, and what the bot tells a buyer outside them.

Pure: no I/O. A `Schedule` is a time zone, per weekday zero or more intervals of local wall-clock time,
and holiday dates. An interval belongs to the day it starts on; `22:00-02:00` runs past midnight into the
next day, `00:00-24:00` (or `00:00-00:00`) is the whole day. A holiday closes the intervals that start on
that date. A time that does not exist on a daylight-saving switch day (02:30 in spring) is taken as the
first wall time that exists, so such an interval opens when the clock jumps; a time that occurs twice
(autumn) is its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from otklik.core.errors import InvalidInput
from otklik.core.templates import render, template_errors

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY = 1440  # minutes
DEFAULT_TIMEZONE = "Europe/Moscow"
MAX_INTERVALS_PER_DAY = 8
MAX_DAY_CHARS = 200
MAX_HOLIDAYS = 400
TEMPLATE_NAMES = ("hours", "next", "timezone")  # placeholders of an after-hours text template
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_DASHES = re.compile(r"\s*[-–—]\s*")


class HoursError(InvalidInput):
    """Invalid business hours; `errors` lists every problem (field: message)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors), details=errors)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Interval:
    """Minutes after local midnight. `end` is 1..1440; `end < start` runs past midnight."""

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end < self.start

    def label(self) -> str:
        return f"{clock(self.start)}-{clock(self.end)}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """Operators' working time. `enabled=False` means "always answering" (no after-hours text)."""

    timezone: str = DEFAULT_TIMEZONE
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7  # Monday first
    holidays: frozenset[date] = field(default_factory=frozenset)
    enabled: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "enabled": self.enabled,
            "week": {name: [i.label() for i in self.week[n]] for n, name in enumerate(WEEKDAYS)},
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
        }

    def day_text(self, weekday: int) -> str:
        """`09:00-13:00, 14:00-18:00`: how a day is shown in the settings form."""
        return ", ".join(i.label() for i in self.week[weekday])


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@cache
def timezones() -> frozenset[str]:
    return frozenset(available_timezones())


# --- parsing and validation ---------------------------------------------------------------------


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """Validate settings input (a form or JSON). Raises `HoursError` listing every problem.

    `week` maps `mon`..`sun` to `"09:00-18:00, 20:00-22:00"` or `[["09:00", "18:00"], …]`;
    `holidays` is a list of ISO dates or one string with dates separated by spaces, commas or lines.
    """
    errors: list[str] = []
    timezone = str(data.get("timezone") or "").strip()
    if len(timezone) > 64 or timezone not in timezones():
        errors.append(f"timezone: unknown time zone {timezone[:64]!r} (e.g. Europe/Moscow, Europe/Madrid)")
    week_raw = data.get("week") or {}
    if not isinstance(week_raw, Mapping):
        errors.append("week: expected a mapping of mon..sun to intervals")
        week_raw = {}
    unknown = [str(k)[:10] for k in week_raw if k not in WEEKDAYS]
    if unknown:
        errors.append(f"week: unknown days {unknown[:3]} (use mon, tue, wed, thu, fri, sat, sun)")
    week = tuple(_parse_day(name, week_raw.get(name), errors) for name in WEEKDAYS)
    if not any(e.startswith(WEEKDAYS) for e in errors):
        errors += _overlaps(week)
    holidays = _parse_holidays(data.get("holidays"), errors)
    if errors:
        raise HoursError(errors)
    return Schedule(timezone=timezone, week=week, holidays=holidays, enabled=flag(data.get("enabled")))


def flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def _parse_day(name: str, raw: object, errors: list[str]) -> tuple[Interval, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        if len(raw) > MAX_DAY_CHARS:
            errors.append(f"{name}: too long (at most {MAX_INTERVALS_PER_DAY} intervals)")
            return ()
        parts: list[Any] = [p for p in re.split(r"[,;\n]", raw) if p.strip()]
    elif isinstance(raw, list):
        parts = raw
    else:
        errors.append(f"{name}: expected intervals like 09:00-18:00")
        return ()
    if len(parts) > MAX_INTERVALS_PER_DAY:
        errors.append(f"{name}: {len(parts)} intervals; at most {MAX_INTERVALS_PER_DAY} a day")
        return ()
    intervals = []
    for part in parts:
        interval = _parse_interval(part)
        if interval is None:
            errors.append(f"{name}: {str(part)[:40]!r} is not an interval like 09:00-18:00")
        elif isinstance(interval, str):
            errors.append(f"{name}: {interval}")
        else:
            intervals.append(interval)
    return tuple(sorted(intervals, key=lambda i: i.start))


def _parse_interval(raw: object) -> Interval | str | None:
    if isinstance(raw, str):
        pieces = _DASHES.split(raw.strip())
    elif isinstance(raw, list | tuple) and all(isinstance(p, str) for p in raw):
        pieces = list(raw)
    else:
        return None
    if len(pieces) != 2:
        return None
    start, end = _minutes(pieces[0]), _minutes(pieces[1])
    if start is None or end is None:
        return None
    if start == DAY:
        return f"{clock(start)}-{clock(end)} cannot start at 24:00"
    if end == 0:
        end = DAY  # "22:00-00:00" ends at midnight
    if start == end:
        return f"{clock(start)}-{clock(end)} is empty (start equals end)"
    return Interval(start, end)


def _minutes(raw: str) -> int | None:
    match = _TIME.match(raw)
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def _overlaps(week: tuple[tuple[Interval, ...], ...]) -> list[str]:
    """Intervals may not overlap, also across midnight and from Sunday night into Monday."""
    spans = []
    for day, intervals in enumerate(week):
        for interval in intervals:
            start = day * DAY + interval.start
            end = day * DAY + interval.end + (DAY if interval.overnight else 0)
            spans.append((start, end, WEEKDAYS[day], interval))
            if end > 7 * DAY:  # Sunday night continues into Monday
                spans.append((start - 7 * DAY, end - 7 * DAY, WEEKDAYS[day], interval))
    spans.sort(key=lambda s: s[0])
    errors = []
    for (_s1, end1, day1, i1), (start2, _e2, day2, i2) in pairwise(spans):
        if start2 < end1:
            errors.append(f"{day2}: {i2.label()} overlaps {day1} {i1.label()}")
    return sorted(set(errors))


def _parse_holidays(raw: object, errors: list[str]) -> frozenset[date]:
    if raw is None or raw == "":
        return frozenset()
    if isinstance(raw, str):
        if len(raw) > MAX_HOLIDAYS * 12:
            errors.append(f"holidays: at most {MAX_HOLIDAYS} dates")
            return frozenset()
        items: list[Any] = [p for p in re.split(r"[\s,;]+", raw) if p]
    elif isinstance(raw, list):
        items = raw
    else:
        errors.append("holidays: expected a list of dates (YYYY-MM-DD)")
        return frozenset()
    if len(items) > MAX_HOLIDAYS:
        errors.append(f"holidays: {len(items)} dates; at most {MAX_HOLIDAYS}")
        return frozenset()
    out = set()
    for item in items:
        try:
            day = date.fromisoformat(str(item)) if isinstance(item, str) and len(item) == 10 else None
        except ValueError:
            day = None
        if day is None or not 2000 <= day.year <= 2100:
            errors.append(f"holidays: {str(item)[:20]!r} is not a date like 2026-01-01")
        else:
            out.add(day)
    return frozenset(out)


def load_schedule(data: Mapping[str, Any] | None) -> Schedule:
    """A stored schedule; the default (disabled) one when there is none."""
    return parse_schedule(data) if data else Schedule()


# --- when operators answer ------------------------------------------------------------------------


def _at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    if minutes >= DAY:
        day, minutes = day + timedelta(days=1), minutes - DAY
    naive = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60)
    for _ in range(180):  # a wall time skipped by a daylight-saving jump: the first one that exists
        moment = naive.replace(tzinfo=zone).astimezone(UTC)
        if moment.astimezone(zone).replace(tzinfo=None) == naive:
            return moment
        naive += timedelta(minutes=1)
    return moment


def _spans(schedule: Schedule, day: date, zone: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
    """The open periods (UTC) of the intervals that start on `day`."""
    if day in schedule.holidays:
        return
    for interval in schedule.week[day.weekday()]:
        end = interval.end + (DAY if interval.overnight else 0)
        yield _at(day, interval.start, zone), _at(day, end, zone)


def is_open(schedule: Schedule, now: datetime) -> bool:
    """Are operators answering at `now` (an aware datetime)? Always, when hours are not enabled."""
    if not schedule.enabled:
        return True
    zone = schedule.zone
    today = now.astimezone(zone).date()
    return any(
        start <= now < end for day in (today - timedelta(days=1), today) for start, end in _spans(schedule, day, zone)
    )


def next_opening(schedule: Schedule, now: datetime) -> datetime | None:
    """The first moment at or after `now` when operators answer (`now` itself when open), in the
    schedule's time zone; None when the week has no hours at all."""
    zone = schedule.zone
    if is_open(schedule, now):
        return now.astimezone(zone)
    if not any(schedule.week):
        return None
    today = now.astimezone(zone).date()
    # Within any 7 days some weekday has hours, so holidays can push the answer at most len(holidays) days.
    for offset in range(-1, len(schedule.holidays) + 8):
        for start, _end in _spans(schedule, today + timedelta(days=offset), zone):
            if start >= now:
                return start.astimezone(zone)
    return None


# --- what the buyer is told ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Words:
    text: str  # {hours} {zone} {when}
    closed: str
    daily: str
    weekdays: str
    days: tuple[str, ...]  # short names
    on_day: tuple[str, ...]  # "on Monday"
    months: tuple[str, ...]  # "9 January" / "9 января"
    span: str  # {a} {b}
    joiner: str
    all_day: str
    today: str
    tomorrow: str
    at: str  # {day} {time}
    zone: str  # {city}
    cities: dict[str, str]


_WORDS = {
    "ru": _Words(
        text="Операторы отвечают {hours} {zone}; ответим {when}.",
        closed="Сейчас операторы не на связи; ответим, как только сможем.",
        daily="ежедневно",
        weekdays="по будням",
        days=("пн", "вт", "ср", "чт", "пт", "сб", "вс"),
        on_day=("в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу", "в воскресенье"),
        months=(
            "января",
            "февраля",
            "марта",
            "апреля",
            "мая",
            "июня",
            "июля",
            "августа",
            "сентября",
            "октября",
            "ноября",
            "декабря",
        ),
        span="с {a} до {b}",
        joiner=" и ",
        all_day="круглосуточно",
        today="сегодня",
        tomorrow="завтра",
        at="{day} в {time}",
        zone="по времени {city}",
        cities={
            "Europe/Moscow": "по Москве",
            "Europe/Kaliningrad": "по Калининграду",
            "Europe/Samara": "по Самаре",
            "Asia/Yekaterinburg": "по Екатеринбургу",
            "Asia/Omsk": "по Омску",
            "Asia/Novosibirsk": "по Новосибирску",
            "Asia/Krasnoyarsk": "по Красноярску",
            "Asia/Irkutsk": "по Иркутску",
            "Asia/Vladivostok": "по Владивостоку",
            "Europe/Minsk": "по Минску",
        },
    ),
    "es": _Words(
        text="Los asesores atienden {hours} ({zone}); te respondemos {when}.",
        closed="Ahora no hay asesores disponibles; te responderemos lo antes posible.",
        daily="todos los días",
        weekdays="de lunes a viernes",
        days=("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
        on_day=("el lunes", "el martes", "el miércoles", "el jueves", "el viernes", "el sábado", "el domingo"),
        months=(
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ),
        span="de {a} a {b}",
        joiner=" y ",
        all_day="las 24 horas",
        today="hoy",
        tomorrow="mañana",
        at="{day} a las {time}",
        zone="hora de {city}",
        cities={
            "Europe/Madrid": "hora de Madrid",
            "America/Argentina/Buenos_Aires": "hora de Buenos Aires",
            "America/Mexico_City": "hora de Ciudad de México",
            "America/Bogota": "hora de Bogotá",
            "America/Lima": "hora de Lima",
            "America/Santiago": "hora de Santiago",
            "Europe/Moscow": "hora de Moscú",
        },
    ),
    "en": _Words(
        text="Operators answer {hours} ({zone}); we will reply {when}.",
        closed="Operators are not available right now; we will reply as soon as we can.",
        daily="daily",
        weekdays="Mon–Fri",
        days=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        on_day=("on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "on Saturday", "on Sunday"),
        months=(
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        span="{a}–{b}",
        joiner=", ",
        all_day="24 hours",
        today="today",
        tomorrow="tomorrow",
        at="{day} at {time}",
        zone="{city} time",
        cities={},
    ),
}


def _words(language: str) -> _Words:
    return _WORDS.get(language) or _WORDS["en"]


def _hm(minutes: int) -> str:
    return f"{(minutes // 60) % 24}:{minutes % 60:02d}" if minutes != DAY else "24:00"


def describe_week(schedule: Schedule, language: str) -> str:
    """`по будням с 9:00 до 18:00, сб с 10:00 до 14:00`: consecutive days with equal hours grouped."""
    words = _words(language)
    groups: list[tuple[int, int, tuple[Interval, ...]]] = []
    for day, intervals in enumerate(schedule.week):
        if groups and groups[-1][2] == intervals and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, intervals)
        else:
            groups.append((day, day, intervals))
    parts = []
    for first, last, intervals in groups:
        if not intervals:
            continue
        if (first, last) == (0, 6):
            days = words.daily
        elif (first, last) == (0, 4):
            days = words.weekdays
        elif first == last:
            days = words.days[first]
        else:
            days = f"{words.days[first]}–{words.days[last]}"
        spans = words.joiner.join(
            words.all_day if (i.start, i.end) == (0, DAY) else words.span.format(a=_hm(i.start), b=_hm(i.end))
            for i in intervals
        )
        parts.append(f"{days} {spans}")
    return ", ".join(parts)


def zone_label(timezone: str, language: str) -> str:
    words = _words(language)
    return words.cities.get(timezone) or words.zone.format(city=timezone.rsplit("/", 1)[-1].replace("_", " "))


def describe_when(opening: datetime, now: datetime, language: str) -> str:
    """`завтра в 9:00`, `el lunes a las 9:00`, `on 9 January at 9:00` (both in the schedule's zone)."""
    words = _words(language)
    days = (opening.date() - now.date()).days
    if days == 0:
        day = words.today
    elif days == 1:
        day = words.tomorrow
    elif days < 7:
        day = words.on_day[opening.weekday()]
    elif language == "ru":
        day = f"{opening.day} {words.months[opening.month - 1]}"
    elif language == "es":
        day = f"el {opening.day} de {words.months[opening.month - 1]}"
    else:
        day = f"on {opening.day} {words.months[opening.month - 1]}"
    at = words.at
    if language == "es" and opening.hour == 1:
        at = "{day} a la {time}"
    return at.format(day=day, time=f"{opening.hour}:{opening.minute:02d}")


def after_hours_text(schedule: Schedule, now: datetime, language: str, template: str | None = None) -> str | None:
    """What the bot adds to a hand-off outside business hours; None inside them (or when not enabled).

    `template` (a pack's `after_hours` text) may use `{{ hours }}`, `{{ next }}` and `{{ timezone }}`."""
    if is_open(schedule, now):
        return None
    words = _words(language)
    opening = next_opening(schedule, now)
    if opening is None:
        return words.closed
    values = {
        "hours": describe_week(schedule, language),
        "timezone": zone_label(schedule.timezone, language),
        "next": describe_when(opening, now.astimezone(schedule.zone), language),
    }
    if template:
        return render(template, values)
    return words.text.format(hours=values["hours"], zone=values["timezone"], when=values["next"])


def after_hours_template_errors(template: str) -> list[str]:
    """Problems of an `after_hours` template: unsupported placeholders or unknown names."""
    errors = template_errors(template)
    for name in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)", template):
        if name not in TEMPLATE_NAMES:
            errors.append(f"unknown placeholder {name!r}; use {', '.join(TEMPLATE_NAMES)}")
    return errors


# --- working time between two moments ------------------------------------------------------------------


def open_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """The seconds of `[start, end)` during which operators answer: all of it when hours are not enabled
    (an operator's first response counted in business hours, docs/metrics.md)."""
    if end <= start:
        return 0.0
    if not schedule.enabled:
        return (end - start).total_seconds()
    zone = schedule.zone
    first, last = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date()
    total, day = 0.0, first
    while day <= last:
        for opens, closes in _spans(schedule, day, zone):
            low, high = max(opens, start), min(closes, end)
            if high > low:
                total += (high - low).total_seconds()
        day += timedelta(days=1)
    return total
