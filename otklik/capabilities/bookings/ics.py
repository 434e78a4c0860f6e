"""The booking as an iCalendar file (RFC 5545), attached to the confirmation where the channel takes files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _escape(text: str) -> str:
    clean = "".join(c for c in text if c == "\n" or ord(c) >= 32)
    return clean.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued with a space (RFC 5545 3.1), never splitting a character."""
    out, chunk = [], ""
    for char in line:
        if len((chunk + char).encode()) > 74:
            out.append(chunk)
            chunk = " "
        chunk += char
    out.append(chunk)
    return "\r\n".join(out)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(data: dict[str, Any], *, address: str, host: str = "otklik", now: datetime) -> bytes:
    """One VEVENT of a booking's event data (`service.booking_data`)."""
    start, end = datetime.fromisoformat(str(data["start"])), datetime.fromisoformat(str(data["end"]))
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//otklik//bookings//RU", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:booking-{int(data['booking_id'])}@{_escape(host)}",
        f"DTSTAMP:{_utc(now)}", f"DTSTART:{_utc(start)}", f"DTEND:{_utc(end)}",
        f"SUMMARY:{_escape(str(data['service']))} — {_escape(str(data['staff']))}",
        f"LOCATION:{_escape(address)}",
        "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT2H", f"DESCRIPTION:{_escape(str(data['service']))}", "END:VALARM",
        "END:VEVENT", "END:VCALENDAR",
    ]  # fmt: skip
    return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode("utf-8")
