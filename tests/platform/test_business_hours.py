"""Business hours: the pure functions (Moscow without DST, Madrid with it, overnight, holidays, input)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from otklik.platform.business_hours import (
    HoursError,
    Schedule,
    after_hours_template_errors,
    after_hours_text,
    is_open,
    next_opening,
    parse_schedule,
)

MSK = ZoneInfo("Europe/Moscow")
MAD = ZoneInfo("Europe/Madrid")
WEEKDAYS_9_18 = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-18:00")


def schedule(week: dict[str, object], timezone: str = "Europe/Moscow", holidays: object = None) -> Schedule:
    return parse_schedule({"timezone": timezone, "enabled": True, "week": week, "holidays": holidays})


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)  # type: ignore[misc]


OFFICE = schedule(WEEKDAYS_9_18)


# --- Moscow (no DST) ---------------------------------------------------------------------------------


def test_friday_evening_opens_on_monday_morning_with_a_russian_text() -> None:
    now = msk(2026, 11, 20, 19, 0)  # Friday
    assert not is_open(OFFICE, now)
    assert next_opening(OFFICE, now) == msk(2026, 11, 23, 9, 0)
    assert after_hours_text(OFFICE, now, "ru") == (
        "Операторы отвечают по будням с 9:00 до 18:00 по Москве; ответим в понедельник в 9:00."
    )


def test_inside_hours_there_is_no_text_and_the_next_opening_is_now() -> None:
    now = msk(2026, 11, 18, 12, 30)  # Wednesday
    assert is_open(OFFICE, now)
    assert next_opening(OFFICE, now) == now
    assert after_hours_text(OFFICE, now, "ru") is None


def test_the_start_is_inclusive_and_the_end_exclusive() -> None:
    assert is_open(OFFICE, msk(2026, 11, 18, 9, 0))
    assert not is_open(OFFICE, msk(2026, 11, 18, 18, 0))
    assert is_open(OFFICE, msk(2026, 11, 18, 17, 59, 59))


def test_early_morning_is_today_and_evening_is_tomorrow() -> None:
    assert after_hours_text(OFFICE, msk(2026, 11, 18, 7, 0), "ru", "{{ next }}") == "сегодня в 9:00"
    assert after_hours_text(OFFICE, msk(2026, 11, 16, 20, 0), "ru", "{{ next }}") == "завтра в 9:00"
    assert after_hours_text(OFFICE, msk(2026, 11, 16, 20, 0), "en", "{{ next }}") == "tomorrow at 9:00"


def test_utc_input_gives_the_same_answer() -> None:
    now = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 19:00 in Moscow
    assert next_opening(OFFICE, now) == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def test_several_intervals_and_day_groups_are_described() -> None:
    week = {**WEEKDAYS_9_18, "mon": "09:00-13:00, 14:00-18:00", "sat": "10:00-14:00"}
    hours = schedule(week)
    text = after_hours_text(hours, msk(2026, 11, 21, 15, 0), "ru")  # Saturday afternoon
    assert text == (
        "Операторы отвечают пн с 9:00 до 13:00 и с 14:00 до 18:00, вт–пт с 9:00 до 18:00, сб с 10:00 до 14:00"
        " по Москве; ответим в понедельник в 9:00."
    )
    assert not is_open(hours, msk(2026, 11, 23, 13, 30))  # the Monday lunch break
    assert next_opening(hours, msk(2026, 11, 23, 13, 30)) == msk(2026, 11, 23, 14, 0)


def test_every_day_is_said_daily() -> None:
    hours = schedule(dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "10:00-20:00"))
    assert after_hours_text(hours, msk(2026, 11, 18, 21, 0), "ru") == (
        "Операторы отвечают ежедневно с 10:00 до 20:00 по Москве; ответим завтра в 10:00."
    )


# --- overnight intervals --------------------------------------------------------------------------------


def test_an_overnight_shift_runs_past_midnight() -> None:
    hours = schedule({"fri": "22:00-02:00"})
    assert is_open(hours, msk(2026, 11, 21, 1, 0))  # Saturday 01:00 belongs to Friday's shift
    assert not is_open(hours, msk(2026, 11, 21, 2, 0))
    assert next_opening(hours, msk(2026, 11, 20, 21, 0)) == msk(2026, 11, 20, 22, 0)
    assert next_opening(hours, msk(2026, 11, 21, 3, 0)) == msk(2026, 11, 27, 22, 0)


def test_sunday_night_continues_into_monday() -> None:
    hours = schedule({"sun": "23:00-03:00"})
    assert is_open(hours, msk(2026, 11, 23, 2, 30))  # Monday
    assert not is_open(hours, msk(2026, 11, 23, 3, 0))


def test_midnight_as_end_and_the_whole_day() -> None:
    hours = schedule({"mon": "20:00-00:00", "tue": "00:00-24:00"})
    assert hours.week[0][0].end == 1440 and not hours.week[0][0].overnight
    assert is_open(hours, msk(2026, 11, 23, 23, 59)) and is_open(hours, msk(2026, 11, 24, 0, 0))
    assert is_open(hours, msk(2026, 11, 24, 23, 59)) and not is_open(hours, msk(2026, 11, 25, 0, 0))


# --- holidays -----------------------------------------------------------------------------------------------


def test_holidays_push_the_opening_and_far_dates_are_named() -> None:
    holidays = [f"2027-01-{d:02d}" for d in range(1, 9)]
    hours = schedule(WEEKDAYS_9_18, holidays=holidays)
    now = msk(2026, 12, 31, 19, 0)
    assert next_opening(hours, now) == msk(2027, 1, 11, 9, 0)
    assert after_hours_text(hours, now, "ru", "{{ next }}") == "11 января в 9:00"
    assert after_hours_text(hours, now, "es", "{{ next }}") == "el 11 de enero a las 9:00"
    assert not is_open(hours, msk(2027, 1, 4, 12, 0))


def test_a_shift_that_starts_before_a_holiday_still_runs_into_it() -> None:
    hours = schedule({"thu": "22:00-02:00"}, holidays="2027-01-01")  # a Friday
    assert is_open(hours, msk(2027, 1, 1, 1, 0))


def test_holidays_accept_lines_and_commas() -> None:
    hours = schedule(WEEKDAYS_9_18, holidays="2027-01-01\n2027-01-02, 2027-01-07")
    assert hours.holidays == {date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 7)}


# --- a week without hours, hours switched off ------------------------------------------------------------


def test_a_week_without_hours_never_opens_and_says_so_clearly() -> None:
    hours = schedule({})
    now = msk(2026, 11, 18, 12, 0)
    assert not is_open(hours, now)
    assert next_opening(hours, now) is None
    assert after_hours_text(hours, now, "ru") == "Сейчас операторы не на связи; ответим, как только сможем."
    assert after_hours_text(hours, now, "es") == "Ahora no hay asesores disponibles; te responderemos lo antes posible."


def test_switched_off_hours_mean_always_answering() -> None:
    off = Schedule()
    assert is_open(off, msk(2026, 11, 22, 3, 0))
    assert after_hours_text(off, msk(2026, 11, 22, 3, 0), "ru") is None


# --- Madrid (DST) -----------------------------------------------------------------------------------------


MADRID = schedule(WEEKDAYS_9_18 | {"sat": "09:00-18:00", "sun": "09:00-18:00"}, timezone="Europe/Madrid")


def test_madrid_opens_at_nine_local_across_the_spring_switch() -> None:
    now = datetime(2026, 3, 28, 20, 0, tzinfo=MAD)  # CET, +1
    assert next_opening(MADRID, now) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST, +2


def test_madrid_opens_at_nine_local_across_the_autumn_switch() -> None:
    now = datetime(2026, 10, 24, 20, 0, tzinfo=MAD)  # CEST
    assert next_opening(MADRID, now) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 09:00 CET


def test_an_interval_in_the_skipped_hour_opens_when_the_clock_jumps() -> None:
    hours = schedule({"sun": "02:30-04:00"}, timezone="Europe/Madrid")
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 CET becomes 03:00 CEST
    assert not is_open(hours, datetime(2026, 3, 29, 0, 59, tzinfo=UTC))
    assert is_open(hours, jump)
    assert next_opening(hours, datetime(2026, 3, 29, 0, 30, tzinfo=UTC)) == jump


def test_spanish_text() -> None:
    office = schedule(WEEKDAYS_9_18, timezone="Europe/Madrid")
    now = datetime(2026, 11, 20, 19, 0, tzinfo=MAD)
    assert after_hours_text(office, now, "es") == (
        "Los asesores atienden de lunes a viernes de 9:00 a 18:00 (hora de Madrid); te respondemos el lunes a las 9:00."
    )
    early = schedule({"mon": "01:00-02:00"}, timezone="Europe/Madrid")
    assert after_hours_text(early, datetime(2026, 11, 23, 0, 30, tzinfo=MAD), "es", "{{ next }}") == "hoy a la 1:00"


def test_a_template_may_use_hours_next_and_timezone() -> None:
    text = after_hours_text(
        OFFICE, msk(2026, 11, 20, 19, 0), "ru", "Мы вернёмся {{ next }} ({{ timezone }}): {{ hours }}"
    )
    assert text == "Мы вернёмся в понедельник в 9:00 (по Москве): по будням с 9:00 до 18:00"
    assert after_hours_template_errors("{{ next }} {{ hours }}") == []
    assert after_hours_template_errors("{{ contact.first_name }}")
    assert after_hours_template_errors("{{ next | upper }}")


# --- validation -------------------------------------------------------------------------------------------


def test_the_stored_form_round_trips() -> None:
    hours = schedule({**WEEKDAYS_9_18, "sat": "22:00-02:00"}, holidays=["2027-01-01"])
    assert parse_schedule(hours.to_dict()) == hours
    assert (
        parse_schedule({**hours.to_dict(), "week": {"mon": [["09:00", "18:00"]]}}).week[0][0].label() == "09:00-18:00"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"timezone": "x" * 5000}, "unknown time zone"),
        ({"week": {"mon": "25:00-26:00"}}, "is not an interval"),
        ({"week": {"mon": "9-18"}}, "is not an interval"),
        ({"week": {"mon": "09:00-09:00"}}, "is empty"),
        ({"week": {"mon": "24:00-01:00"}}, "cannot start at 24:00"),
        ({"week": {"mon": "09:00-12:00, 11:00-13:00"}}, "overlaps"),
        ({"week": {"mon": "22:00-02:00", "tue": "01:00-05:00"}}, "tue: 01:00-05:00 overlaps mon 22:00-02:00"),
        ({"week": {"sun": "23:00-03:00", "mon": "02:00-04:00"}}, "overlaps sun"),
        ({"week": {"mon": [["09:00", "10:00"]] * 10_000}}, "at most 8"),
        ({"week": {"mon": "09:00-10:00," * 1000}}, "too long"),
        ({"week": {"funday": "09:00-10:00"}}, "unknown days"),
        ({"week": ["mon"]}, "expected a mapping"),
        ({"week": {"mon": 5}}, "expected intervals"),
        ({"holidays": "2026-13-01"}, "not a date"),
        ({"holidays": [f"2027-01-{d % 28 + 1:02d}" for d in range(500)]}, "at most 400"),
        ({"holidays": 7}, "expected a list"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(data: dict[str, object], message: str) -> None:
    raw: dict[str, object] = {"timezone": "Europe/Moscow", "enabled": True, **data}
    with pytest.raises(HoursError) as caught:
        parse_schedule(raw)
    assert message in caught.value.user_message
    assert len(caught.value.user_message) < 2000


def test_touching_intervals_are_fine() -> None:
    hours = schedule({"mon": "09:00-12:00, 12:00-18:00", "tue": "00:00-24:00", "wed": "00:00-24:00"})
    assert is_open(hours, msk(2026, 11, 23, 12, 0))
