from __future__ import annotations

import pytest

from otklik.conversations.nlu.entities import extract_entities
from tests.conversations.nlu.conftest import NOW  # Wednesday 2024-05-08 12:00


def dates(text: str, language: str = "ru") -> list[tuple[str, str]]:
    return [(e.kind, e.value) for e in extract_entities(text, language, now=NOW) if "date" in e.kind]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("завтра в 15:00", [("datetime", "2024-05-09T15:00:00")]),
        ("приеду послезавтра", [("date", "2024-05-10")]),
        ("получила вчера", [("date", "2024-05-07")]),
        ("сегодня в 9 утра", [("datetime", "2024-05-08T09:00:00")]),
        ("в пятницу в 10 утра", [("datetime", "2024-05-10T10:00:00")]),
        ("в среду", [("date", "2024-05-15")]),
        ("в 3 дня", [("datetime", "2024-05-08T15:00:00")]),
        ("к 7 вечера", [("datetime", "2024-05-08T19:00:00")]),
        ("в 10 часов", [("datetime", "2024-05-09T10:00:00")]),
        ("через 2 дня", [("date", "2024-05-10")]),
        ("через неделю", [("date", "2024-05-15")]),
        ("25 мая", [("date", "2024-05-25")]),
        ("1 марта 2025 года", [("date", "2025-03-01")]),
        ("заказала 28 апреля", [("date", "2024-04-28")]),
        ("12.05.2024 в 9:30", [("datetime", "2024-05-12T09:30:00")]),
        ("25.12.23", [("date", "2023-12-25")]),
        ("пришло 25.04", [("date", "2024-04-25")]),
    ],
)
def test_russian_dates(text: str, expected: list[tuple[str, str]]) -> None:
    assert dates(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("el viernes a las 10", [("datetime", "2024-05-10T10:00:00")]),
        ("mañana 9:30", [("datetime", "2024-05-09T09:30:00")]),
        ("pasado mañana a las 18 hs", [("datetime", "2024-05-10T18:00:00")]),
        ("hoy a las 3 de la tarde", [("datetime", "2024-05-08T15:00:00")]),
        ("15/01", [("date", "2024-01-15")]),
        ("15/06/2024", [("date", "2024-06-15")]),
        ("el 25 de mayo", [("date", "2024-05-25")]),
        ("el próximo lunes", [("date", "2024-05-13")]),
        ("en 3 días", [("date", "2024-05-11")]),
        ("mañana a la mañana", [("date", "2024-05-09")]),
    ],
)
def test_spanish_dates(text: str, expected: list[tuple[str, str]]) -> None:
    assert dates(text, "es") == expected


def test_day_month_without_year_takes_the_nearest_occurrence() -> None:
    # From May 2024, "25 декабря" is nearer in the past (Dec 2023) than in the future (Dec 2024).
    assert dates("25 декабря") == [("date", "2023-12-25")]
    assert dates("10 сентября") == [("date", "2024-09-10")]


def test_a_weekday_means_the_next_one_even_on_the_same_day() -> None:
    assert dates("в среду") == [("date", "2024-05-15")]


def test_a_time_already_past_today_means_tomorrow() -> None:
    assert dates("в 9:00") == [("datetime", "2024-05-09T09:00:00")]
    assert dates("в 18:30") == [("datetime", "2024-05-08T18:30:00")]


@pytest.mark.parametrize(
    "text", ["31.02", "30.02.2024", "32.01", "15.13", "2.5 литра", "12.5 мл", "1.5", "в 3 раза", "v1.25", "10.000"]
)
def test_impossible_or_non_dates(text: str) -> None:
    assert dates(text) == []


def test_morning_is_not_tomorrow_in_spanish() -> None:
    assert dates("por la mañana", "es") == []
    assert dates("a la mañana", "es") == []


def test_time_far_from_a_date_stays_separate() -> None:
    found = dates("завтра заберу, а позвоните мне пожалуйста сегодня в 18:00")
    assert found == [("date", "2024-05-09"), ("datetime", "2024-05-08T18:00:00")]


def test_default_now_is_the_current_time() -> None:
    [entity] = extract_entities("сегодня", "ru")
    assert entity.kind == "date" and len(entity.value) == 10
