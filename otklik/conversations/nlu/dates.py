"""Russian and Spanish dates and times, resolved against a given `now` ("завтра в 15:00" → ISO).

Rules (see docs/nlu.md): a weekday means its next occurrence after today (1-7 days ahead); a day and
month without a year take the occurrence nearest to `now` (within half a year either way); a time alone
means today if still ahead, otherwise tomorrow; an impossible date (31.02) yields nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from otklik.conversations.nlu.spans import Found

__all__ = ["find_dates"]

_MONTHS = {
    "янв": 1, "фев": 2, "мар": 3, "апр": 4, "мая": 5, "май": 5, "июн": 6, "июл": 7, "авг": 8, "сен": 9,
    "окт": 10, "ноя": 11, "дек": 12, "ene": 1, "feb": 2, "abr": 4, "may": 5, "jun": 6, "jul": 7,
    "ago": 8, "sep": 9, "set": 9, "oct": 10, "nov": 11, "dic": 12,
}  # fmt: skip
_WEEKDAYS = {
    "понедельник": 0, "вторник": 1, "сред": 2, "четверг": 3, "пятниц": 4, "суббот": 5, "воскресень": 6,
    "lunes": 0, "martes": 1, "miercoles": 2, "miércoles": 2, "jueves": 3, "viernes": 4, "sabado": 5,
    "sábado": 5, "domingo": 6,
}  # fmt: skip
_RELATIVE = {
    "позавчера": -2, "вчера": -1, "сегодня": 0, "послезавтра": 2, "завтра": 1,
    "anteayer": -2, "antes de ayer": -2, "ayer": -1, "hoy": 0, "pasado mañana": 2, "pasado manana": 2,
}  # fmt: skip
_NUMBER_WORDS = {"один": 1, "одну": 1, "два": 2, "две": 2, "пару": 2, "три": 3, "un": 1, "una": 1, "dos": 2}

_B = r"(?<![\w])"
_E = r"(?![\w])"
_UNITS = r"(?!\s*(?:мл|л|кг|гр?|%|руб|р|ml|lts?|kg|cm|см|мм|mm|mp|мп|tb|gb|v|a|w)\b)"
_REL = re.compile(
    _B + r"(?P<w>позавчера|вчера|сегодня|послезавтра|завтра|anteayer|antes de ayer|ayer|hoy|pasado ma[ñn]ana"
    r"|(?<!la )(?<!las )ma[ñn]ana)" + _E,
    re.IGNORECASE,
)
_IN_DAYS = re.compile(
    _B + r"(?:через|en|dentro de)\s+(?P<n>\d{1,3}|один|одну|два|две|пару|три|un|una|dos)?\s*"
    r"(?P<u>дн\w*|день|недел\w*|d[ií]as?|semanas?)" + _E,
    re.IGNORECASE,
)
_WEEKDAY = re.compile(
    _B + r"(?:(?:в|во|на|el|este|el pr[oó]ximo|pr[oó]ximo|в следующ\w+|в эт\w+)\s+)?"
    r"(?P<d>понедельник|вторник|сред[ауы]|четверг|пятниц[ауы]|суббот[ауы]|воскресень[ея]"
    r"|lunes|martes|mi[eé]rcoles|jueves|viernes|s[aá]bado|domingo)" + _E,
    re.IGNORECASE,
)
_DAY_MONTH = re.compile(
    _B + r"(?P<d>\d{1,2})\s*(?:de\s+)?(?P<m>январ\w*|феврал\w*|март\w*|апрел\w*|ма[яй]|июн\w*|июл\w*|август\w*"
    r"|сентябр\w*|октябр\w*|ноябр\w*|декабр\w*|янв|фев|апр|авг|сент?|окт|нояб?|дек"
    r"|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre"
    r"|ene|feb|mar|abr|jun|jul|ago|sept?|set|oct|nov|dic)\.?(?:\s*(?:de\s+|del\s+)?(?P<y>\d{4}))?" + _E,
    re.IGNORECASE,
)
_NUMERIC = re.compile(
    r"(?<![\d.,/:])(?P<d>\d{1,2})(?:\.(?P<m1>\d{2})|/(?P<m2>\d{1,2}))(?:[./](?P<y>\d{4}|\d{2}))?(?![\d]|[.,/]\d)"
    + _UNITS
)


def _part_of_day(name: str) -> str:
    return rf"(?:\s*(?P<{name}>утра|дня|вечера|ночи|de la ma[ñn]ana|de la tarde|de la noche|am|pm|a\.m\.|p\.m\.))?"


_TIME = re.compile(
    r"(?:(?<![\w])(?:в|к|на|около|до|a las|a la|las|desde las)\s+)?(?<![\d:.])(?P<h>[01]?\d|2[0-3])[:](?P<mi>[0-5]\d)"
    r"(?:\s*(?:hs|h|ч)\.?)?" + _part_of_day("p") + r"(?![\d])"
    r"|(?<![\w])(?:a las|a la|desde las)\s+(?P<h2>[01]?\d|2[0-3])(?:\s*(?:hs|horas?|h)\.?)?"
    + _part_of_day("p2")
    + _E
    + r"|(?<![\w])(?:в|к|около|до)\s+(?P<h4>[01]?\d|2[0-3])\s*(?:(?:час\w*|ч\.?)(?:\s*(?P<p4>утра|дня|вечера|ночи))?"
    r"|(?P<p5>утра|дня|вечера|ночи))" + _E + r"|(?<![\w\d])(?P<h3>[01]?\d|2[0-3])\s*(?:hs|час\w*)" + _E,
    re.IGNORECASE,
)
_CONNECTOR = re.compile(r"^[\s,.-]*(?:(?:в|к|на|около|a|las|la|el|at|para)[\s,]+)*[\s,.-]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Part:
    start: int
    end: int
    day: date | None = None
    clock: time | None = None


def _nearest(day: int, month: int, now: datetime) -> date | None:
    candidates = []
    for year in (now.year - 1, now.year, now.year + 1):
        try:
            candidates.append(date(year, month, day))
        except ValueError:
            continue
    return min(candidates, key=lambda d: abs((d - now.date()).days)) if candidates else None


def _make_date(day: int, month: int, year: str | None, now: datetime) -> date | None:
    if year is None:
        return _nearest(day, month, now)
    full = int(year) + (2000 if len(year) == 2 else 0)
    try:
        return date(full, month, day)
    except ValueError:
        return None


def _month(word: str) -> int | None:
    lowered = word.lower()
    if lowered.startswith(("март", "marzo")) or lowered == "mar":
        return 3
    return next((n for prefix, n in _MONTHS.items() if lowered.startswith(prefix)), None)


def _date_parts(text: str, now: datetime) -> Iterator[_Part]:
    today = now.date()
    for m in _REL.finditer(text):
        key = m.group("w").lower().replace("manana", "mañana")
        offset = _RELATIVE.get(key, 1 if key == "mañana" else 0)
        yield _Part(m.start(), m.end(), day=today + timedelta(days=offset))
    for m in _IN_DAYS.finditer(text):
        raw = (m.group("n") or "1").lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS.get(raw, 1)
        days = count * (7 if m.group("u").lower().startswith(("недел", "seman")) else 1)
        yield _Part(m.start(), m.end(), day=today + timedelta(days=days))
    for m in _WEEKDAY.finditer(text):
        word = m.group("d").lower()
        target = next(n for prefix, n in _WEEKDAYS.items() if word.startswith(prefix))
        ahead = (target - today.weekday()) % 7 or 7
        yield _Part(m.start(), m.end(), day=today + timedelta(days=ahead))
    for m in _DAY_MONTH.finditer(text):
        month = _month(m.group("m"))
        found = _make_date(int(m.group("d")), month, m.group("y"), now) if month else None
        if found:
            yield _Part(m.start(), m.end(), day=found)
    for m in _NUMERIC.finditer(text):
        month_raw = m.group("m1") or m.group("m2")
        if not 1 <= int(month_raw) <= 12:
            continue
        found = _make_date(int(m.group("d")), int(month_raw), m.group("y"), now)
        if found:
            yield _Part(m.start(), m.end(), day=found)


def _hour(hour: int, part: str | None) -> int:
    if not part:
        return hour
    p = part.lower()
    if p in ("pm", "p.m.") or p in ("вечера", "de la tarde", "de la noche") or (p == "дня" and hour <= 6):
        return hour + 12 if hour < 12 else hour
    if p in ("ночи", "de la noche") and hour == 12:
        return 0
    if p in ("am", "a.m.", "утра") and hour == 12:
        return 0
    return hour


def _time_parts(text: str) -> Iterator[_Part]:
    for m in _TIME.finditer(text):
        raw = m.group("h") or m.group("h2") or m.group("h3") or m.group("h4")
        minutes = int(m.group("mi")) if m.group("mi") else 0
        part = m.group("p") or m.group("p2") or m.group("p4") or m.group("p5")
        yield _Part(m.start(), m.end(), clock=time(_hour(int(raw), part), minutes))


def _without_overlaps(parts: list[_Part]) -> list[_Part]:
    kept: list[_Part] = []
    for part in sorted(parts, key=lambda p: (p.start, -(p.end - p.start))):
        if all(part.start >= k.end or part.end <= k.start for k in kept):
            kept.append(part)
    return kept


def find_dates(text: str, language: str, now: datetime) -> Iterator[Found]:
    """Yield `date` and `datetime` entities; a date and a time next to each other merge into a datetime."""
    days = _without_overlaps(list(_date_parts(text, now)))
    clocks = [
        c for c in _without_overlaps(list(_time_parts(text))) if all(c.end <= d.start or c.start >= d.end for d in days)
    ]
    used: set[int] = set()
    for d in days:
        assert d.day is not None
        partner = next((i for i, c in enumerate(clocks) if i not in used and _adjacent(text, d, c)), None)
        if partner is None:
            yield Found("date", d.day.isoformat(), d.start, d.end)
            continue
        used.add(partner)
        c = clocks[partner]
        assert c.clock is not None
        moment = datetime.combine(d.day, c.clock)
        yield Found("datetime", moment.isoformat(), min(d.start, c.start), max(d.end, c.end))
    for i, c in enumerate(clocks):
        if i in used or c.clock is None:
            continue
        moment = datetime.combine(now.date(), c.clock)
        if moment <= now.replace(tzinfo=None):
            moment += timedelta(days=1)
        yield Found("datetime", moment.isoformat(), c.start, c.end)


def _adjacent(text: str, a: _Part, b: _Part) -> bool:
    first, second = (a, b) if a.start < b.start else (b, a)
    between = text[first.end : second.start]
    return len(between) <= 20 and bool(_CONNECTOR.match(between))
