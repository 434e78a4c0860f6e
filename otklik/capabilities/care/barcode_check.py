"""The wrong-item check: is the barcode on the buyer's label one of the seller's products, and which size?

Input is the buyer's last message: a photo of the label (decoded with zxing-cpp; several codes on one
label are all tried) or typed digits (the EAN-13 checksum is checked). The cached WB cards answer first;
a barcode the cache does not know is checked live with WB (the cache may be older than a new card). When
WB cannot be asked, the result says so and the flow takes the general path.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from otklik.adapters.media import MediaStore
from otklik.adapters.wildberries import WBError
from otklik.adapters.wildberries.accounts import INTERACTIVE_RETRY, client_for, wb_accounts
from otklik.capabilities.care.barcodes import decode_image, read_digits
from otklik.capabilities.care.catalog import ProductMatch, count_products, find_barcode
from otklik.conversations.context import RuntimeContext

log = logging.getLogger(__name__)

Status = Literal[
    "ours",  # the barcode is on one of the seller's cards: `product` says which and which size
    "not_ours",  # a valid barcode that none of the seller's cards has: mixed up on the marketplace side
    "unreadable",  # a photo without a readable barcode: ask for the digits
    "not_image",  # a file that is not an image
    "bad_checksum",  # digits typed with a wrong check digit: ask again
    "no_digits",  # text without anything like a barcode
    "unavailable",  # WB could not be asked (down, rate-limited, no API key): general path, check later
]


@dataclass(frozen=True, slots=True)
class BuyerInput:
    """The buyer's message the check reads: its text and the media ids of attached photos/files."""

    text: str = ""
    photos: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Status
    barcode: str = ""
    product: ProductMatch | None = None
    codes: tuple[str, ...] = ()  # every valid code that was read
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "barcode": self.barcode, "codes": list(self.codes)}
        if self.product is not None:
            out["product"] = self.product.as_dict()
        if self.reason:
            out["reason"] = self.reason
        return out


async def _codes(media: MediaStore, given: BuyerInput) -> tuple[list[str], Status | None, str]:
    """Valid codes from the input, or the status that explains why there are none."""
    if given.photos or given.files:
        codes: list[str] = []
        readable = False
        for media_id in (given.photos + given.files)[:5]:
            try:
                data = await media.read(media_id)
            except KeyError:
                continue
            reading = await asyncio.to_thread(decode_image, data)
            readable = readable or reading.readable
            codes += [c for c in reading.codes if c not in codes]
        typed = read_digits(given.text)  # a caption with the digits counts too
        codes += [c for c in typed.valid if c not in codes]
        if codes:
            return codes, None, ""
        return [], ("unreadable" if readable or not given.files else "not_image"), ""
    typed = read_digits(given.text)
    if typed.valid:
        return list(typed.valid), None, ""
    if typed.invalid:
        return [], "bad_checksum", typed.invalid[0]
    return [], "no_digits", ""


async def check_barcode(ctx: RuntimeContext, given: BuyerInput) -> CheckResult:
    """Read the barcode(s) and look them up; several codes: the first one that is ours wins."""
    db = ctx.db
    codes, status, bad = await _codes(ctx.media, given)
    if status is not None:
        return CheckResult(status, barcode=bad)
    async with db.read() as session:
        for code in codes:
            match = await find_barcode(session, code)
            if match is not None:
                return CheckResult("ours", code, match, tuple(codes))
        cached = await count_products(session)
    live = await _live_lookup(ctx, codes)
    if isinstance(live, ProductMatch):
        return CheckResult("ours", live.barcode, live, tuple(codes), details={"source": "wb_live"})
    if live == "not_found":
        return CheckResult("not_ours", codes[0], None, tuple(codes), details={"cached_products": cached})
    return CheckResult("unavailable", codes[0], None, tuple(codes), reason=live)


async def _live_lookup(ctx: RuntimeContext, codes: list[str]) -> ProductMatch | str:
    """Ask WB about codes the cache does not know: a match, "not_found", or the reason WB was not asked."""
    accounts = await wb_accounts(ctx.db, ctx.vault)
    if not accounts:
        return "no_wb_account"
    for account in accounts:
        async with client_for(
            account, ctx.settings, limiters=ctx.wb_limiters, retry=INTERACTIVE_RETRY, timeout=8.0
        ) as client:
            for code in codes:
                try:
                    found = await client.find_barcode(code)
                except WBError as exc:
                    log.warning("WB barcode check failed for account %s: %s", account.id, exc)
                    return f"wb_error:{type(exc).__name__}"
                if found is not None:
                    return ProductMatch(
                        code, found.nm_id, found.vendor_code, found.title, found.tech_size, found.wb_size
                    )
    return "not_found"
