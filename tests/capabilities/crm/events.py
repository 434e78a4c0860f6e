"""The events of /work/briefs/events.md as the bookings capability emits them, for the CRM's tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from otklik.bootstrap import Otklik
from otklik.platform.webhooks import emit


def lead(lead_id: int = 5, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "lead_id": lead_id, "contact_id": 11, "conversation_id": 21, "client_name": "Айгуль Сафина",
        "phone": "+79171234567", "email": None, "service_id": 3, "service": "Стрижка",
        "preferred_time": "2026-12-12T15:00:00+03:00", "source": "telegram", "source_detail": "promo_winter",
        "comment": "Хочу к Лейсан", "utm": {"source": "vk", "medium": "cpc", "campaign": "winter"},
        "summary": "Клиентка хочет стрижку в субботу после обеда.", "admin_url": f"/admin/bookings/leads/{lead_id}",
    }  # fmt: skip
    return data | over


def booking(booking_id: int = 7, lead_id: int | None = 5, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "booking_id": booking_id, "lead_id": lead_id, "contact_id": 11, "conversation_id": 21,
        "client_name": "Айгуль Сафина", "phone": "+79171234567", "service_id": 3, "service": "Стрижка",
        "staff_id": 2, "staff": "Лейсан", "start": "2026-12-12T15:00:00+03:00", "end": "2026-12-12T16:00:00+03:00",
        "timezone": "Europe/Moscow", "status": "pending", "source": "telegram", "price": Decimal("1500.00"),
        "notes": "", "summary": "Запись на стрижку.", "admin_url": f"/admin/bookings/{booking_id}",
    }  # fmt: skip
    return data | over


async def emit_event(app: Otklik, event_type: str, data: dict[str, Any], now: datetime) -> str:
    subject = f"lead:{data['lead_id']}" if event_type.startswith("lead.") else f"booking:{data['booking_id']}"
    async with app.db.write() as session:
        return await emit(session, event_type, data, now=now, subject=subject)
