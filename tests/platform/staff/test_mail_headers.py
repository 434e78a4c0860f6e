"""A staff e-mail's subject reaches the reader as written, also a long Cyrillic one (several encoded words)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from otklik.config import Settings
from otklik.platform.staff.transports import Delivery, SmtpTransport


@pytest.mark.parametrize(
    "subject",
    [
        "Запись подтверждена: Салон «Лён» — стрижка у Айгуль в субботу в 15:00, Казань, ул. Баумана, 12",
        "Nueva reserva: corte de pelo con Aigul el sábado a las 15:00 — confirmación pendiente del salón",
        "Short",
    ],
)
def test_the_subject_survives_encoding_and_folding(subject: str) -> None:
    transport = SmtpTransport(Settings(env="test", smtp_from="bot@salon.example"))
    message = transport.message(Delivery(1, "admin@salon.example", subject, "body", "", "k-1"))
    raw = message.as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n") + raw.split(b"\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    assert parsed.get_content().strip() == "body"
