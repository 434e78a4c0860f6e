"""Every automatic check of a review screenshot, each recorded with its result, and the outcome.

1. image    — a real image within limits (done before anything else; a bad upload changes nothing)
2. duplicate — perceptual-hash distance to every earlier claim's screenshot, any buyer
3. ocr      — Tesseract (Russian) when installed: text, dates, stars
4. wb_match — the seller's WB reviews of that nmId in the campaign window, fuzzy-matched to the OCR text,
               the buyer's first name and the date
5. condition — the campaign's reward condition on the matched review (photo, rating)
6. once     — a WB review is rewarded once only
Outcome: approve only when the WB match is certain and the campaign allows it; reject when the review
was already rewarded; otherwise moderation with the reasons.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.capabilities.cashback import images, ocr
from otklik.capabilities.cashback.feedbacks import FeedbackSource, FeedbacksUnavailable
from otklik.capabilities.cashback.matching import Match, best_match
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.rules import Condition

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"


@dataclass(slots=True)
class Outcome:
    decision: str  # approve | moderate | reject
    items: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    reject_reason: str | None = None
    phash: str = ""
    match: Match | None = None
    wb_down: bool = False
    fraud: bool = False
    ocr_text: str = ""

    def add(self, name: str, result: str, detail: str = "", **data: Any) -> None:
        self.items.append({"name": name, "result": result, "detail": detail[:500], **data})

    def record(self, elapsed_ms: int, info: images.ImageInfo) -> dict[str, Any]:
        return {
            "items": self.items,
            "ocr_text": self.ocr_text[:3000],
            "image": {"format": info.format, "width": info.width, "height": info.height},
            "match": self.match.as_dict() if self.match else None,
            "ms": elapsed_ms,
        }


async def earlier_hashes(session: AsyncSession, claim_id: int) -> list[tuple[int, int, str]]:
    """(claim id, contact id, hash) of every other claim's screenshot."""
    rows = await session.execute(
        select(CashbackClaim.id, CashbackClaim.contact_id, CashbackClaim.screenshot_hash).where(
            CashbackClaim.screenshot_hash.is_not(None), CashbackClaim.id != claim_id
        )
    )
    return [(int(r.id), int(r.contact_id), str(r.screenshot_hash)) for r in rows]


def duplicates(phash: str, contact_id: int, earlier: list[tuple[int, int, str]], outcome: Outcome) -> None:
    close = [(images.distance(phash, h), cid, contact) for cid, contact, h in earlier]
    close = sorted(c for c in close if c[0] <= images.DUPLICATE_DISTANCE)
    if not close:
        outcome.add("duplicate", PASS, "no earlier screenshot is similar")
        return
    others = [c for c in close if c[2] != contact_id]
    if others:
        outcome.fraud = True
        ids = ", ".join(f"#{c[1]}" for c in others[:5])
        outcome.add(
            "duplicate",
            FAIL,
            f"near-duplicate of claims {ids} by other buyers: possible fraud ring",
            claims=[c[1] for c in others[:20]],
            distance=others[0][0],
        )
        outcome.reasons.append("duplicate_other_buyer")
    else:
        outcome.add(
            "duplicate",
            FAIL,
            f"the same buyer sent this screenshot for claim #{close[0][1]}",
            claims=[c[1] for c in close[:20]],
            distance=close[0][0],
        )
        outcome.reasons.append("duplicate_same_buyer")


async def run_checks(
    db: Database,
    claim: CashbackClaim,
    campaign: CashbackCampaign,
    info: images.ImageInfo,
    picture: Any,
    source: FeedbackSource,
    now: datetime,
) -> Outcome:
    """Checks 2–6 for an image that passed check 1 (`images.inspect`). Database reads are short sessions:
    no connection is held while OCR runs or Wildberries is asked."""
    outcome = Outcome("moderate", phash=info.phash)
    outcome.add("image", PASS, f"{info.format} {info.width}×{info.height}")
    async with db.read() as session:
        earlier = await earlier_hashes(session, claim.id)
    # Comparing with every earlier screenshot grows with the claims: a worker thread, not the event loop.
    await asyncio.to_thread(duplicates, info.phash, claim.contact_id, earlier, outcome)
    reading: ocr.OcrResult | None = None
    started = time.perf_counter()
    if not ocr.available():
        outcome.add("ocr", SKIP, "Tesseract is not installed: the screenshot cannot be read automatically")
        outcome.reasons.append("ocr_unavailable")
    else:
        try:
            reading = await asyncio.to_thread(ocr.read, picture, today=now.date())
        except Exception as exc:  # Tesseract's own time limit, a crash: a person reads it instead
            outcome.add("ocr", SKIP, f"OCR failed: {type(exc).__name__}: {str(exc)[:200]}")
            outcome.reasons.append("ocr_failed")
    if reading is not None:
        outcome.ocr_text = reading.text
        outcome.add(
            "ocr",
            PASS if reading.text else WARN,
            f"{len(reading.text)} characters read",
            ms=int((time.perf_counter() - started) * 1000),
            dates=[d.isoformat() for d in reading.dates],
            stars=reading.stars,
        )
    await _wb_match(db, claim, campaign, reading, source, now, outcome)
    _decide(campaign, outcome)
    return outcome


async def _wb_match(
    db: Database,
    claim: CashbackClaim,
    campaign: CashbackCampaign,
    reading: ocr.OcrResult | None,
    source: FeedbackSource,
    now: datetime,
    outcome: Outcome,
) -> None:
    if reading is None or claim.nm_id is None:
        outcome.add("wb_match", SKIP, "nothing to match without OCR")
        return
    until = min(now, campaign.ends_at) if campaign.ends_at else now
    try:
        reviews = await source.reviews(int(claim.nm_id), campaign.starts_at, until)
    except FeedbacksUnavailable as exc:
        outcome.wb_down = True
        outcome.add("wb_match", SKIP, f"Wildberries is unavailable: {str(exc)[:200]}")
        outcome.reasons.append("wb_unavailable")
        return
    match = await asyncio.to_thread(best_match, reading, reviews)  # fuzzy matching of every review: CPU work
    outcome.match = match
    if not match.certain:
        outcome.add("wb_match", WARN if match.review else FAIL, f"no certain match ({match.why})", **match.as_dict())
        outcome.reasons.append(f"wb_{match.why}")
    else:
        outcome.add("wb_match", PASS, f"review {match.review.id if match.review else ''}", **match.as_dict())
    review = match.review
    if review is None:
        return
    if campaign.condition == Condition.PHOTO and review.photos == 0:
        outcome.add("condition", FAIL, "the campaign rewards reviews with a photo; this one has none")
        outcome.reasons.append("condition_photo")
    elif campaign.condition == Condition.RATING and (review.stars or 0) < campaign.min_rating:
        outcome.add("condition", FAIL, f"rating {review.stars} is below {campaign.min_rating}")
        outcome.reasons.append("condition_rating")
    else:
        outcome.add("condition", PASS, str(campaign.condition))
    async with db.read() as session:
        taken = await session.scalar(
            select(CashbackClaim.id).where(
                CashbackClaim.rewarded_feedback_id == review.id, CashbackClaim.id != claim.id
            )
        )
    if taken is not None:
        outcome.add("once", FAIL, f"this WB review was already rewarded (claim #{taken})", claim=int(taken))
        outcome.reasons.append("already_rewarded")
        if match.certain:
            outcome.reject_reason = "already_rewarded"
    else:
        outcome.add("once", PASS, "the review has not been rewarded before")


def _decide(campaign: CashbackCampaign, outcome: Outcome) -> None:
    if outcome.reject_reason:
        outcome.decision = "reject"
    elif outcome.match is not None and outcome.match.certain and not outcome.reasons:
        if campaign.auto_approve:
            outcome.decision = "approve"
        else:
            outcome.reasons.append("manual_approval")
    if outcome.decision == "moderate" and not outcome.reasons:
        outcome.reasons.append("needs_review")
