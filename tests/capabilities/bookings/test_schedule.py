"""Slot arithmetic (pure): the grid, breaks, days off, salon holidays, buffers, busy spans, minimum notice,
never the past, a daylight-saving day; reminders out of quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from otklik.capabilities.bookings.schedule import Span, free_slots, on_grid
from otklik.capabilities.bookings.service import after_visit_due, check_hours, reminder_due

MSK = ZoneInfo("Europe/Moscow")
HOURS = check_hours(
    {"timezone": "Europe/Moscow", "week": {"sat": "10:00-14:00, 15:00-17:00", "mon": "10:00-12:00"},
     "holidays": ["2026-12-19"]}
)  # fmt: skip
SAT = date(2026, 12, 12)  # a Saturday
EARLY = datetime(2026, 12, 1, tzinfo=UTC)


def _local(slots: list[datetime]) -> list[str]:
    return [s.astimezone(MSK).strftime("%H:%M") for s in slots]


def test_grid_and_break() -> None:
    got = free_slots(HOURS, duration_min=60, buffer_min=0, busy=[], first_day=SAT, days=1, now=EARLY)
    assert _local(got) == ["10:00", "10:15", "10:30", "10:45", "11:00", "11:15", "11:30", "11:45", "12:00",
                           "12:15", "12:30", "12:45", "13:00", "15:00", "15:15", "15:30", "15:45", "16:00"]  # fmt: skip
    assert all(on_grid(s, MSK) for s in got)


def test_busy_span_and_buffer() -> None:
    busy = [Span(datetime(2026, 12, 12, 11, 0, tzinfo=MSK), datetime(2026, 12, 12, 12, 15, tzinfo=MSK))]
    got = _local(free_slots(HOURS, duration_min=60, buffer_min=15, busy=busy, first_day=SAT, days=1, now=EARLY))
    # 10:00 + 60 + 15 buffer reaches 11:15 > 11:00: refused; 09:45 is outside the hours
    assert got[:2] == ["12:15", "12:30"] and "10:00" not in got and "11:00" not in got
    no_buffer = _local(free_slots(HOURS, duration_min=60, buffer_min=0, busy=busy, first_day=SAT, days=1, now=EARLY))
    assert no_buffer[0] == "10:00" and "10:15" not in no_buffer


def test_days_off_holidays_and_closed_days() -> None:
    week = free_slots(HOURS, duration_min=60, buffer_min=0, busy=[], first_day=SAT, days=10, now=EARLY)
    days = sorted({s.astimezone(MSK).date() for s in week})
    assert days == [date(2026, 12, 12), date(2026, 12, 14), date(2026, 12, 21)]  # no sundays; sat 19th: day off
    closed = free_slots(HOURS, duration_min=60, buffer_min=0, busy=[], first_day=SAT, days=3, now=EARLY,
                        closed=frozenset({date(2026, 12, 14)}))  # fmt: skip
    assert {s.astimezone(MSK).date() for s in closed} == {SAT}


def test_never_in_the_past_and_minimum_notice() -> None:
    now = datetime(2026, 12, 12, 11, 5, tzinfo=MSK)
    got = _local(free_slots(HOURS, duration_min=60, buffer_min=0, busy=[], first_day=SAT, days=1, now=now))
    assert got[0] == "11:15"
    later = free_slots(HOURS, duration_min=60, buffer_min=0, busy=[], first_day=SAT, days=1, now=now,
                       min_notice=timedelta(hours=2))  # fmt: skip
    assert _local(later)[0] == "15:00"  # 13:15 would end after 14:00, the start of the break


def test_too_long_service_and_nonsense() -> None:
    assert free_slots(HOURS, duration_min=300, buffer_min=0, busy=[], first_day=SAT, days=1, now=EARLY) == []
    assert free_slots(HOURS, duration_min=0, buffer_min=0, busy=[], first_day=SAT, days=1, now=EARLY) == []
    assert free_slots(HOURS, duration_min=30, buffer_min=-5, busy=[], first_day=SAT, days=1, now=EARLY) == []


def test_daylight_saving_day() -> None:
    madrid = check_hours({"timezone": "Europe/Madrid", "week": {"sun": "01:00-04:00"}})
    got = free_slots(madrid, duration_min=60, buffer_min=0, busy=[], first_day=date(2027, 3, 28), days=1, now=EARLY)
    labels = [s.astimezone(ZoneInfo("Europe/Madrid")).strftime("%H:%M") for s in got]
    assert "02:00" not in labels and "02:30" not in labels  # 02:00-03:00 does not exist that night
    assert len(set(got)) == len(got) and labels[0] == "01:00"


def test_reminders_leave_quiet_hours() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    visit = datetime(2026, 12, 12, 10, 0, tzinfo=MSK)
    assert reminder_due(visit, 1440, MSK, now) == datetime(2026, 12, 11, 10, 0, tzinfo=MSK)
    # 2 h before a 10:00 visit is 08:00, inside the quiet hours: at their end (09:00), still before the visit
    assert reminder_due(visit, 120, MSK, now) == datetime(2026, 12, 12, 9, 0, tzinfo=MSK)
    early = datetime(2026, 12, 12, 9, 0, tzinfo=MSK)  # 09:00 visit: 07:00 → the evening before
    assert reminder_due(early, 120, MSK, now) == datetime(2026, 12, 11, 20, 45, tzinfo=MSK)
    assert reminder_due(visit, 1440, MSK, datetime(2026, 12, 11, 12, 0, tzinfo=MSK)) is None  # already past


def test_the_after_visit_message_waits_for_the_morning() -> None:
    assert after_visit_due(datetime(2026, 12, 12, 17, 0, tzinfo=MSK), -120, MSK) == datetime(2026, 12, 12, 19, 0,
                                                                                            tzinfo=MSK)  # fmt: skip
    assert after_visit_due(datetime(2026, 12, 12, 20, 0, tzinfo=MSK), -120, MSK) == datetime(2026, 12, 13, 9, 0,
                                                                                            tzinfo=MSK)  # fmt: skip


def test_reading_a_buyers_sentence() -> None:
    from otklik.capabilities.bookings.talk import read

    now = datetime(2026, 12, 10, 12, 0, tzinfo=MSK)  # a Thursday
    services, staff = {1: "Стрижка", 2: "Маникюр"}, {1: "Айгуль", 2: "Ольга"}
    r = read("Хочу записаться на стрижку в субботу после обеда", now, services, staff)
    assert (r.service_id, r.staff_id, r.day, r.part, r.bad) == (1, None, date(2026, 12, 12), "afternoon", None)
    r = read("можно к Айгуль на завтра в 15?", now, services, staff)
    assert (r.staff_id, r.moment) == (1, datetime(2026, 12, 11, 15, 0, tzinfo=MSK))
    assert read("маникюр к Ольге в 3", now, services, staff).moment == datetime(2026, 12, 10, 15, 0, tzinfo=MSK)
    assert read("на стрижку в 25:00", now, services, staff).bad == "25:00"
    assert read("31 февраля", now, services, staff).bad == "31 февраля"
    assert read("в 12:75", now, services, staff).bad == "12:75"
    assert read("x" * 10_000, now, services, staff) == read("", now, services, staff)


def test_the_ics_file() -> None:
    from otklik.capabilities.bookings.ics import calendar

    data = {"booking_id": 7, "service": "Стрижка; модельная, с укладкой", "staff": "Айгуль\r\nX-EVIL:1",
            "start": "2026-12-12T15:00:00+03:00", "end": "2026-12-12T16:00:00+03:00"}  # fmt: skip
    body = calendar(data, address="Казань, ул. Баумана, 12 — " + "очень длинный адрес " * 6, now=EARLY)
    lines = body.decode().split("\r\n")
    assert "DTSTART:20261212T120000Z" in lines and "DTEND:20261212T130000Z" in lines and "UID:booking-7@otklik" in lines
    assert not any(line.startswith("X-EVIL") for line in lines)  # an injected line stays inside the summary
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = body.decode().replace("\r\n ", "")
    assert "SUMMARY:Стрижка\\; модельная\\, с укладкой — Айгуль\\nX-EVIL:1" in unfolded
