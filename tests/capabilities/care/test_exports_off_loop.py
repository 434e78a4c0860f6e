"""Issue 14: the care CSV exports (a long period is thousands of rows) are written and neutralised in a worker
thread, never on the event loop's thread, and are still the same injection-safe files. No timings asserted."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from typing import Any

import pytest

from otklik.bootstrap import Otklik
from otklik.capabilities.care import admin as care_admin
from otklik.capabilities.care import incidents, reviews
from otklik.platform.users import Role
from tests.capabilities.care.test_care_pages import day, seed_incidents


def _recording(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[threading.Thread]:
    threads: list[threading.Thread] = []
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return threads


async def test_the_care_csv_exports_are_written_off_the_event_loop(
    otklik: Otklik, as_role, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    loop_thread = threading.current_thread()
    written = _recording(monkeypatch, incidents, "_incidents_csv_text")
    reviews_written = _recording(monkeypatch, reviews, "_reviews_csv_text")
    neutralised = _recording(monkeypatch, care_admin, "neutralise_csv")
    await seed_incidents(otklik)
    analyst = await as_role(Role.ANALYST)

    response = await analyst.http.get("/admin/care/incidents.csv", params={"from": day(-60), "to": day(0)})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0] == list(incidents.CSV_COLUMNS) and len(rows) == 6
    assert not [c for row in rows[1:] for c in row if c[:1] in ("=", "+", "-", "@")]

    empty = await analyst.http.get("/admin/care/reviews.csv")
    assert empty.status_code == 200
    assert list(csv.reader(io.StringIO(empty.text.lstrip("\ufeff")))) == [list(reviews.REVIEW_CSV_COLUMNS)]

    assert len(written) == 1 and len(reviews_written) == 1 and len(neutralised) == 2
    assert all(t is not loop_thread for t in written + reviews_written + neutralised)
