"""The buyer's data for the pre-invoice, kept on the contact (`contacts.fields["sales_customer"]`): razón
social, CUIT (check digit verified), condición frente al IVA, delivery address or pick-up. Asked once: a
contact that has it is not asked again.

Stored as plain JSON, not sealed: a CUIT and a razón social are the business's public fiscal identity
(AFIP publishes them; they are printed on every invoice), and the admin, the pre-invoice and the ERP hand-over
must read them. Nothing here is a secret such as payout details, which the platform seals with the Vault.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import bindparam, select, update

from otklik.adapters.db.models import Contact
from otklik.conversations.timers import QuickTx

KEY = "sales_customer"
IVA_CONDITIONS = {
    "ri": "Responsable Inscripto", "responsable inscripto": "Responsable Inscripto",
    "monotributo": "Monotributista", "monotributista": "Monotributista", "exento": "Exento",
    "consumidor final": "Consumidor final", "cf": "Consumidor final",
}  # fmt: skip
PREFIXES = {"20", "23", "24", "27", "30", "33", "34"}
WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_FIELDS = select(Contact.fields).where(Contact.id == bindparam("contact_id"))
_SAVE = update(Contact).where(Contact.id == bindparam("contact_id")).values(fields=bindparam("b_fields"))


def cuit(text: str) -> str | None:
    """`20-12345678-6` (or 11 digits with any separators) when the check digit holds; else None."""
    digits = re.sub(r"[\s.\-/]", "", str(text or ""))[:20]
    if not re.fullmatch(r"\d{11}", digits) or digits[:2] not in PREFIXES:
        return None
    check = 11 - sum(int(d) * w for d, w in zip(digits[:10], WEIGHTS, strict=True)) % 11
    check = 0 if check == 11 else check
    if check == 10 or check != int(digits[10]):
        return None
    return f"{digits[:2]}-{digits[2:10]}-{digits[10]}"


async def get(tx: QuickTx, contact_id: int) -> dict[str, Any] | None:
    rows = await tx.fetch(_FIELDS, {"contact_id": contact_id})
    fields = (rows[0][0] if rows else None) or {}
    found = fields.get(KEY) if isinstance(fields, dict) else None
    return found if isinstance(found, dict) and found.get("cuit") else None


async def save(tx: QuickTx, contact_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Validate and keep; returns {ok, errors: [field, …], customer?}. Nothing is stored on an error."""
    errors: list[str] = []
    name = " ".join(str(data.get("name") or "").split())[:200]
    if len(name) < 2:
        errors.append("name")
    number = cuit(str(data.get("cuit") or ""))
    if number is None:
        errors.append("cuit")
    condition = IVA_CONDITIONS.get(" ".join(str(data.get("iva") or "").lower().split()))
    if condition is None:
        errors.append("iva")
    delivery = "pickup" if str(data.get("delivery") or "") == "pickup" else "delivery"
    address = " ".join(str(data.get("address") or "").split())[:300]
    if delivery == "delivery" and len(address) < 5:
        errors.append("address")
    if errors:
        return {"ok": False, "errors": errors}
    customer = {"name": name, "cuit": number, "iva": condition, "delivery": delivery,
                "address": address if delivery == "delivery" else ""}  # fmt: skip
    rows = await tx.fetch(_FIELDS, {"contact_id": contact_id})
    fields = dict((rows[0][0] if rows else None) or {})
    fields[KEY] = customer
    await tx.execute(_SAVE, {"contact_id": contact_id, "b_fields": fields})
    return {"ok": True, "errors": [], "customer": customer}
