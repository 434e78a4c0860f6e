"""Campaigns: create and edit (every field validated), which campaign a buyer enters, budget and count caps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.rules import DECIDED, Condition
from otklik.capabilities.cashback.texts import clean_overrides
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.audit import audit

STATUSES = ("draft", "active", "paused", "ended")
PAYLOAD_PREFIX = "cb"
MAX_PRODUCTS = 200


@dataclass(slots=True)
class CampaignInput:
    """What the admin form sends, already parsed; `validate()` raises InvalidInput naming the field."""

    name: str
    reward_kopecks: int
    starts_at: datetime
    ends_at: datetime | None = None
    status: str = "draft"
    all_products: bool = False
    products: list[dict[str, Any]] = field(default_factory=list)  # [{"nm_id": int, "name": str}]
    condition: str = Condition.ANY
    min_rating: int = 1
    one_per_buyer: bool = True
    auto_approve: bool = True
    budget_kopecks: int | None = None
    max_claims: int | None = None
    erase_after_days: int = 30
    texts: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        self.name = " ".join(self.name.split())[:120]
        if not self.name:
            raise InvalidInput("name: give the campaign a name")
        if not 100 <= self.reward_kopecks <= 10_000_000:
            raise InvalidInput("reward: from 1 to 100 000 RUB")
        if self.status not in STATUSES:
            raise InvalidInput(f"status: one of {', '.join(STATUSES)}")
        if self.condition not in set(Condition):
            raise InvalidInput("condition: any, photo or rating")
        if not 1 <= self.min_rating <= 5:
            raise InvalidInput("min_rating: 1 to 5")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise InvalidInput("ends_at: the end must be after the start")
        if self.budget_kopecks is not None and self.budget_kopecks < self.reward_kopecks:
            raise InvalidInput("budget: at least one reward")
        if self.max_claims is not None and not 1 <= self.max_claims <= 1_000_000:
            raise InvalidInput("max_claims: 1 to 1 000 000")
        if not 1 <= self.erase_after_days <= 365:
            raise InvalidInput("erase_after_days: 1 to 365")
        if not self.all_products and not self.products:
            raise InvalidInput("products: list at least one WB article (nmId) or choose all products")
        if len(self.products) > MAX_PRODUCTS:
            raise InvalidInput(f"products: at most {MAX_PRODUCTS}")
        seen: set[int] = set()
        for item in self.products:
            if item["nm_id"] in seen:
                raise InvalidInput(f"products: {item['nm_id']} is listed twice")
            seen.add(item["nm_id"])
        self.texts = clean_overrides(self.texts)


def parse_products(text: str) -> list[dict[str, Any]]:
    """One product a line: `123456789 Name` or `123456789; Name` (the name is optional)."""
    items = []
    for number, raw in enumerate((text or "").splitlines()[: MAX_PRODUCTS + 1], start=1):
        line = raw.strip()
        if not line:
            continue
        head, _, rest = line.replace(";", " ").replace(",", " ", 1).partition(" ")
        if not head.isdigit() or not 4 <= len(head) <= 12:
            raise InvalidInput(f"products, line {number}: start with the WB article (nmId), digits only")
        items.append({"nm_id": int(head), "name": " ".join(rest.split())[:200]})
    return items


def deep_link_payload(campaign_id: int) -> str:
    return f"{PAYLOAD_PREFIX}_{campaign_id}"


def campaign_from_payload(payload: str | None) -> int | None:
    """`cb_42` -> 42 (the pack routes `cb` and `cb_*` to the cashback flow)."""
    if not payload:
        return None
    head, _, tail = payload.strip().partition("_")
    return int(tail) if head == PAYLOAD_PREFIX and tail.isdigit() and len(tail) < 12 else None


def _apply(row: CashbackCampaign, data: CampaignInput) -> None:
    row.name, row.status, row.reward_kopecks = data.name, data.status, data.reward_kopecks
    row.starts_at, row.ends_at = data.starts_at, data.ends_at
    row.all_products, row.products = data.all_products, {"items": data.products}
    row.condition, row.min_rating = data.condition, data.min_rating
    row.one_per_buyer, row.auto_approve = data.one_per_buyer, data.auto_approve
    row.budget_kopecks, row.max_claims = data.budget_kopecks, data.max_claims
    row.erase_after_days, row.texts = data.erase_after_days, data.texts


def _summary(data: CampaignInput) -> dict[str, Any]:
    return {
        "name": data.name,
        "status": data.status,
        "reward_kopecks": data.reward_kopecks,
        "condition": data.condition,
        "products": len(data.products),
        "all_products": data.all_products,
    }


async def create_campaign(session: AsyncSession, data: CampaignInput, *, actor: str, now: datetime) -> int:
    data.validate()
    row = CashbackCampaign(created_by=actor[:120], created_at=now, updated_at=now)
    _apply(row, data)
    session.add(row)
    await session.flush()
    audit(session, actor, "campaign.create", "campaign", row.id, _summary(data), now=now)
    return int(row.id)


async def update_campaign(
    session: AsyncSession, campaign_id: int, data: CampaignInput, *, actor: str, now: datetime
) -> None:
    data.validate()
    row = await session.get(CashbackCampaign, campaign_id)
    if row is None:
        raise NotFound("no such campaign")
    _apply(row, data)
    row.updated_at = now
    audit(session, actor, "campaign.update", "campaign", campaign_id, _summary(data), now=now)


def is_running(campaign: CashbackCampaign, now: datetime) -> bool:
    return (
        campaign.status == "active"
        and campaign.starts_at <= now
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


def has_ended(campaign: CashbackCampaign, now: datetime) -> bool:
    return campaign.status == "ended" or (campaign.ends_at is not None and now >= campaign.ends_at)


async def running(session: AsyncSession, now: datetime) -> list[CashbackCampaign]:
    rows = (
        await session.execute(
            select(CashbackCampaign).where(CashbackCampaign.status == "active").order_by(CashbackCampaign.id.desc())
        )
    ).scalars()
    return [c for c in rows if is_running(c, now)]


@dataclass(frozen=True, slots=True)
class Usage:
    rewarded: int  # approved + paid claims
    committed_kopecks: int

    def exhausted(self, campaign: CashbackCampaign) -> bool:
        """No room for one more reward (budget cap or count cap)."""
        if campaign.max_claims is not None and self.rewarded >= campaign.max_claims:
            return True
        budget = campaign.budget_kopecks
        return budget is not None and self.committed_kopecks + campaign.reward_kopecks > budget


async def usage(session: AsyncSession, campaign_id: int) -> Usage:
    count, total = (
        await session.execute(
            select(func.count(CashbackClaim.id), func.coalesce(func.sum(CashbackClaim.amount_kopecks), 0)).where(
                CashbackClaim.campaign_id == campaign_id, CashbackClaim.state.in_([str(s) for s in DECIDED])
            )
        )
    ).one()
    return Usage(int(count), int(total))


async def usage_of(session: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, Usage]:
    """`usage` of many campaigns in one GROUP BY query (a campaign without decided claims gets zeros)."""
    ids = sorted({int(i) for i in campaign_ids})
    out = {campaign_id: Usage(0, 0) for campaign_id in ids}
    if not ids:
        return out
    rows = await session.execute(
        select(
            CashbackClaim.campaign_id,
            func.count(CashbackClaim.id),
            func.coalesce(func.sum(CashbackClaim.amount_kopecks), 0),
        )
        .where(CashbackClaim.campaign_id.in_(ids), CashbackClaim.state.in_([str(s) for s in DECIDED]))
        .group_by(CashbackClaim.campaign_id)
    )
    for campaign_id, count, total in rows:
        out[int(campaign_id)] = Usage(int(count), int(total))
    return out


def products_of(campaign: CashbackCampaign) -> list[dict[str, Any]]:
    return list((campaign.products or {}).get("items", []))


async def product_name(session: AsyncSession, campaign: CashbackCampaign, nm_id: int) -> str | None:
    """The product's name when `nm_id` takes part in the campaign, else None."""
    for item in products_of(campaign):
        if int(item["nm_id"]) == nm_id:
            return str(item.get("name") or nm_id)
    if not campaign.all_products:
        return None
    from otklik.adapters.db.models import WBProduct

    title = await session.scalar(select(WBProduct.title).where(WBProduct.nm_id == nm_id).limit(1))
    return str(title) if title else f"арт. {nm_id}"


async def catalogue(session: AsyncSession, campaign: CashbackCampaign, limit: int = 10) -> list[tuple[int, str]]:
    """Products to offer as buttons (the campaign's list, or the cached WB cards for "all products")."""
    items = [(int(i["nm_id"]), str(i.get("name") or i["nm_id"])) for i in products_of(campaign)]
    if not items and campaign.all_products:
        from otklik.adapters.db.models import WBProduct

        rows = (
            await session.execute(select(WBProduct.nm_id, WBProduct.title).order_by(WBProduct.id).limit(limit))
        ).all()
        items = [(int(r.nm_id), str(r.title or r.nm_id)) for r in rows]
    return items[:limit]
