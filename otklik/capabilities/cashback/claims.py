"""The buyer's journey as a state machine over the claim row.

`step()` is called by the `cashback.step` flow action for each buyer message (and once on entry). It reads
the claim, does the slow work outside any write transaction (image checks, OCR, the WB call), then writes
the new state and its replies in one transaction. The flow only loops: step -> wait for input -> step.

Stages: terms (consent) -> product -> screenshot -> checks -> moderation | approved | rejected, then the
payout details (asked while the claim is in moderation or approved), then paid. "статус" or the status
button answers at any point. A bad upload gets a clear reply and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.crypto import Vault
from otklik.adapters.db.models import Conversation, Message
from otklik.capabilities.cashback import campaigns as camp
from otklik.capabilities.cashback import images, texts
from otklik.capabilities.cashback.checks import Outcome, run_checks
from otklik.capabilities.cashback.feedbacks import SOURCE_STATE, FeedbackSource, WBFeedbackSource
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.payouts import seal
from otklik.capabilities.cashback.rules import (
    ALIVE,
    OPEN_STAGES,
    PayoutDetails,
    PayoutProblem,
    Stage,
    mask_digits,
    nm_id_in,
    parse_payout,
    rubles,
)
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.sealed import SEALED, unseal_text
from otklik.conversations.timers import ACTION_MESSAGES
from otklik.core.conversation import ConversationState, redact_var
from otklik.core.messages import Button, OutboundMessage

NUDGED_STAGES = ("screenshot", "payout")


@dataclass(frozen=True, slots=True)
class BuyerInput:
    """The buyer's last message: text, button payload, attachments, upload error. `sealed`: the text is the
    raw answer to the flow's sensitive question, decrypted from the message row (which holds it masked)."""

    message_id: int | None = None
    text: str = ""
    button: str = ""
    attachments: tuple[dict[str, Any], ...] = ()
    upload_error: str = ""
    sealed: bool = False

    @property
    def word(self) -> str:
        return " ".join(self.text.lower().split()).strip(" .!?")


@dataclass(slots=True)
class StepResult:
    """What the flow gets back: `wait` "input" (loop) or "" (done); `nudge` "yes" arms the 48 h timer."""

    wait: str = ""
    stage: str = ""
    claim: int | None = None
    nudge: str = "no"
    messages: list[tuple[str, tuple[Button, ...]]] = field(default_factory=list)

    def say(self, text: str, *buttons: Button) -> None:
        self.messages.append((text, tuple(buttons)))

    def as_dict(self) -> dict[str, Any]:
        """The action's result. `messages` are sent by the runtime in the transaction that moves the flow on
        (see `otklik.conversations.timers.ACTION_MESSAGES`), so a buyer never sees a question before the flow waits
        for its answer, and a re-run action after a crash repeats no reply."""
        return {
            "wait": self.wait or "none",
            "stage": self.stage,
            "claim": self.claim,
            "nudge": self.nudge,
            ACTION_MESSAGES: [
                OutboundMessage(text=text, buttons=buttons).to_dict() for text, buttons in self.messages if text.strip()
            ],
        }


def _buttons(*keys: str) -> tuple[Button, ...]:
    return tuple(Button(texts.BUTTONS[k], f"cb:{k}") for k in keys)


#: Works from anywhere (a `flow:` payload starts the flow): entering with a claim shows its status.
STATUS_BUTTON = (Button(texts.BUTTONS["status"], "flow:care.cashback"),)


def source_for(ctx: RuntimeContext) -> FeedbackSource:
    """The feedback source of this install: `ctx.state["cashback.feedback_source"]` when set (tests put a
    static one there), else the live WB source."""
    source: FeedbackSource | None = ctx.state.get(SOURCE_STATE)
    return source if source is not None else WBFeedbackSource(ctx)


async def last_input(session: AsyncSession, conversation_id: int, vault: Vault | None = None) -> BuyerInput:
    """`vault`: the install's, to read the sealed raw answer to a sensitive question (None: the masked text)."""
    row = (
        await session.execute(
            select(Message.id, Message.text, Message.payload)
            .where(Message.conversation_id == conversation_id, Message.direction == "in")
            .order_by(Message.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return BuyerInput()
    payload = row.payload or {}
    raw = unseal_text(vault, payload) if vault is not None else None
    return BuyerInput(
        message_id=int(row.id),
        text=(raw if raw is not None else row.text or "")[:2000],
        sealed=raw is not None,
        button=str(payload.get("payload") or "")[:256],
        attachments=tuple(a for a in payload.get("attachments", []) if isinstance(a, dict)),
        upload_error=str(payload.get("upload_error") or ""),
    )


def status_text(claim: CashbackClaim | None, campaign: CashbackCampaign | None) -> str:
    if claim is None or campaign is None:
        return texts.text("status_none")
    values = _values(claim, campaign)
    if claim.state == Stage.REJECTED:
        values["reason"] = claim.reject_text or texts.text(f"reason_{claim.reject_reason or 'other'}", campaign.texts)
    line = texts.text(f"status_{claim.state}", campaign.texts, **values)
    if needs_payout(claim):
        line += "\n" + texts.text("status_payout_missing", campaign.texts)
    return line


def _values(claim: CashbackClaim, campaign: CashbackCampaign) -> dict[str, Any]:
    return {
        "claim": claim.id,
        "product": claim.product_name or "—",
        "amount": rubles(claim.amount_kopecks or campaign.reward_kopecks),
        "campaign": campaign.name,
        "erase_days": campaign.erase_after_days,
        "masked": claim.payout_masked,
    }


def needs_payout(claim: CashbackClaim) -> bool:
    return claim.state in (Stage.MODERATION, Stage.APPROVED) and not claim.payout_secret and claim.erased_at is None


class Journey:
    """One step of one conversation."""

    def __init__(self, ctx: RuntimeContext, conversation_id: int, now: datetime | None = None) -> None:
        self.ctx = ctx
        self.conversation_id = conversation_id
        self.now = now or utcnow()
        self.result = StepResult()
        self._unsealed = False

    async def step(self, *, mode: str, payload: str = "", previous: dict[str, Any] | None = None) -> StepResult:
        async with self.ctx.db.read() as session:
            conv = await repo.load_conversation(session, conversation_id=self.conversation_id, lock=False)
            if conv is None:
                return self.result
            self.contact_id, self.account_id = conv.contact_id, conv.channel_account_id
            given = await last_input(session, self.conversation_id, self.ctx.vault) if mode != "enter" else BuyerInput()
            current = await self._current(session)
        account = self.ctx.accounts.get(self.account_id)
        if account is not None and account.kind in self.ctx.marketplace_kinds:
            self.result.say(texts.text("not_here"))  # compliance: no rewards, no payout details on marketplace chats
            return await self._flush()
        if mode == "enter":
            await self._enter(current, payload)
        elif mode == "nudge":
            await self._nudge(current)
        else:
            await self._input(current, given, previous or {})
            await self._unseal_done(given)  # whatever the input was ("статус", a typo): nothing keeps it
        return await self._flush()

    # --- reading -----------------------------------------------------------------------------

    async def _current(self, session: AsyncSession) -> tuple[CashbackClaim, CashbackCampaign] | None:
        """The conversation's claim that still waits for the buyer (open stage or payout details)."""
        row = (
            await session.execute(
                select(CashbackClaim, CashbackCampaign)
                .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
                .where(CashbackClaim.conversation_id == self.conversation_id)
                .order_by(CashbackClaim.id.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        claim, campaign = row
        return (claim, campaign)

    # --- entry -------------------------------------------------------------------------------

    async def _enter(self, current: tuple[CashbackClaim, CashbackCampaign] | None, payload: str) -> None:
        wanted = camp.campaign_from_payload(payload)
        if current is not None:
            claim, campaign = current
            if (claim.state in OPEN_STAGES or needs_payout(claim)) and (wanted in (None, campaign.id)):
                if claim.state == Stage.PRODUCT:
                    async with self.ctx.db.read() as session:
                        products = await camp.catalogue(session, campaign)
                    self._products = tuple(Button(name[:60], f"cb:nm:{nm}") for nm, name in products)
                self._prompt(claim, campaign, resume=True)
                return
            if wanted is None and claim.state != Stage.CANCELLED:  # a draft the buyer cancelled: start anew
                self.result.say(status_text(claim, campaign), *_buttons("new"))
                self._wait("menu", claim)
                return
        await self._start(wanted)

    async def _start(self, wanted: int | None) -> None:
        async with self.ctx.db.read() as session:
            if wanted is not None:
                campaign = await session.get(CashbackCampaign, wanted)
                choices = [campaign] if campaign is not None else []
            else:
                choices = await camp.running(session, self.now)
            if len(choices) > 1:
                buttons = [Button(c.name[:60], f"cb:c:{c.id}") for c in choices[:10]]
                self.result.say(texts.text("choose_campaign"), *buttons)
                self._wait("choose")
                return
            campaign = choices[0] if choices else None
            refusal = await self._refusal(session, campaign)
        if refusal or campaign is None:
            self.result.say(refusal or texts.text("no_campaign"))
            return
        async with self.ctx.db.write() as session:
            await session.execute(  # a new claim replaces an unfinished one of this conversation
                update(CashbackClaim)
                .where(
                    CashbackClaim.conversation_id == self.conversation_id,
                    CashbackClaim.state.in_([str(s) for s in OPEN_STAGES]),
                )
                .values(state=Stage.CANCELLED, updated_at=self.now)
            )
            claim = CashbackClaim(
                campaign_id=campaign.id,
                contact_id=self.contact_id,
                conversation_id=self.conversation_id,
                channel_account_id=self.account_id,
                state=Stage.TERMS,
                amount_kopecks=campaign.reward_kopecks,
                checks={},
                reasons={},
                matched={},
                nudges={},
                created_at=self.now,
                updated_at=self.now,
            )
            session.add(claim)
            await session.flush()
            self._prompt(claim, campaign)

    async def _refusal(self, session: AsyncSession, campaign: CashbackCampaign | None) -> str | None:
        """Why this campaign takes no claim now (ended, not running, budget or count exhausted)."""
        if campaign is None:
            return texts.text("no_campaign")
        values = {"campaign": campaign.name}
        if camp.has_ended(campaign, self.now):
            return texts.text("ended", campaign.texts, **values)
        if not camp.is_running(campaign, self.now):
            return texts.text("no_campaign", campaign.texts)
        if (await camp.usage(session, campaign.id)).exhausted(campaign):
            return texts.text("exhausted", campaign.texts, **values)
        return None

    def _prompt(self, claim: CashbackClaim, campaign: CashbackCampaign, *, resume: bool = False) -> None:
        """Ask for what the claim's stage needs."""
        values = _values(claim, campaign)
        if resume and claim.state != Stage.TERMS:
            self.result.say(status_text(claim, campaign))
        if claim.state == Stage.TERMS:
            self.result.say(texts.text("terms", campaign.texts, **values), *_buttons("agree", "decline"))
            self._wait("terms", claim)
        elif claim.state == Stage.PRODUCT:
            self.result.messages.append((texts.text("product", campaign.texts, **values), self._products))
            self._wait("product", claim)
        elif claim.state == Stage.SCREENSHOT:
            self.result.say(texts.text("screenshot", campaign.texts, **values), *STATUS_BUTTON)
            self._wait("screenshot", claim, nudge=not claim.nudges.get("screenshot"))
        elif needs_payout(claim):
            self.result.say(texts.text("payout", campaign.texts, **values))
            self._wait("payout", claim, nudge=not claim.nudges.get("payout"))
        elif not resume:
            self.result.say(status_text(claim, campaign))

    _products: tuple[Button, ...] = ()

    def _wait(self, stage: str, claim: CashbackClaim | None = None, *, nudge: bool = False) -> None:
        self.result.wait, self.result.stage = "input", stage
        self.result.claim = int(claim.id) if claim is not None and claim.id else None
        self.result.nudge = "yes" if nudge and stage in NUDGED_STAGES else "no"

    # --- buyer input -------------------------------------------------------------------------

    async def _input(
        self, current: tuple[CashbackClaim, CashbackCampaign] | None, given: BuyerInput, previous: dict[str, Any]
    ) -> None:
        stage = str(previous.get("stage") or "")
        if given.button == "cb:status" or given.word in texts.STATUS_WORDS:
            claim, campaign = current if current else (None, None)
            self.result.say(status_text(claim, campaign))
            if current is not None and (current[0].state in OPEN_STAGES or needs_payout(current[0])):
                self._wait(stage or current[0].state, current[0], nudge=False)
            return
        if stage == "choose" or given.button.startswith("cb:c:"):
            await self._choose(given)
            return
        if stage == "menu":
            if given.button == "cb:new" or given.word in ("новая", "новая заявка"):
                await self._start(None)
            return  # anything else leaves the cashback flow quietly
        if current is None:
            await self._start(None)
            return
        claim, campaign = current
        if claim.state == Stage.TERMS:
            await self._terms(claim, campaign, given)
        elif claim.state == Stage.PRODUCT:
            await self._product(claim, campaign, given)
        elif claim.state == Stage.SCREENSHOT:
            await self._screenshot(claim, campaign, given)
        elif needs_payout(claim):
            await self._payout(claim, campaign, given)
        else:
            self.result.say(status_text(claim, campaign))

    async def _choose(self, given: BuyerInput) -> None:
        chosen: int | None = None
        if given.button.startswith("cb:c:") and given.button[5:].isdigit():
            chosen = int(given.button[5:])
        else:
            async with self.ctx.db.read() as session:
                options = await camp.running(session, self.now)
            word = given.word
            if word.isdigit() and 1 <= int(word) <= len(options):
                chosen = options[int(word) - 1].id
            else:
                chosen = next((c.id for c in options if c.name.lower() == word), None)
        if chosen is None:
            await self._start(None)  # ask again
            return
        await self._start(chosen)

    async def _terms(self, claim: CashbackClaim, campaign: CashbackCampaign, given: BuyerInput) -> None:
        if given.button == "cb:decline" or given.word in texts.DECLINE_WORDS:
            await self._save(claim.id, state=Stage.CANCELLED)
            self.result.say(texts.text("declined", campaign.texts))
            return
        if not (given.button == "cb:agree" or given.word in texts.AGREE_WORDS):
            self._prompt(claim, campaign)
            return
        async with self.ctx.db.read() as session:
            refusal = await self._refusal(session, campaign)
            products = await camp.catalogue(session, campaign)
        if refusal:
            await self._save(claim.id, state=Stage.CANCELLED)
            self.result.say(refusal)
            return
        values: dict[str, Any] = {"consent_at": self.now, "state": Stage.PRODUCT}
        if len(products) == 1 and not campaign.all_products:
            values.update(state=Stage.SCREENSHOT, nm_id=products[0][0], product_name=products[0][1])
        claim = await self._save(claim.id, **values)
        self._products = tuple(Button(name[:60], f"cb:nm:{nm}") for nm, name in products)
        self._prompt(claim, campaign)

    async def _product(self, claim: CashbackClaim, campaign: CashbackCampaign, given: BuyerInput) -> None:
        nm: int | None = None
        if given.button.startswith("cb:nm:") and given.button[6:].isdigit():
            nm = int(given.button[6:])
        elif given.text:
            nm = nm_id_in(given.text)
        async with self.ctx.db.read() as session:
            name = await camp.product_name(session, campaign, nm) if nm else None
            products = await camp.catalogue(session, campaign)
            taken = await self._taken(session, claim, campaign, nm) if name is not None and nm is not None else False
        self._products = tuple(Button(n[:60], f"cb:nm:{i}") for i, n in products)
        if name is None or nm is None:
            self.result.messages.append((texts.text("product_unknown", campaign.texts), self._products))
            self._wait("product", claim)
            return
        if taken:
            self.result.say(texts.text("product_taken", campaign.texts, product=name))
            self.result.messages.append((texts.text("product", campaign.texts), self._products))
            self._wait("product", claim)
            return
        claim = await self._save(claim.id, state=Stage.SCREENSHOT, nm_id=nm, product_name=name[:300])
        self._prompt(claim, campaign)

    async def _taken(self, session: AsyncSession, claim: CashbackClaim, campaign: CashbackCampaign, nm: int) -> bool:
        if not campaign.one_per_buyer:
            return False
        found = await session.scalar(
            select(CashbackClaim.id).where(
                CashbackClaim.contact_id == claim.contact_id,
                CashbackClaim.nm_id == nm,
                CashbackClaim.campaign_id == campaign.id,
                CashbackClaim.id != claim.id,
                CashbackClaim.state.in_([str(s) for s in ALIVE]),
            )
        )
        return found is not None

    async def _screenshot(self, claim: CashbackClaim, campaign: CashbackCampaign, given: BuyerInput) -> None:
        def again(text: str) -> None:
            self.result.say(text, *STATUS_BUTTON)
            self._wait("screenshot", claim, nudge=not claim.nudges.get("screenshot"))

        limit_mb = max(1, min(images.MAX_BYTES, self.ctx.settings.max_upload_bytes) // (1024 * 1024))
        if given.upload_error:
            again(texts.text("too_large", campaign.texts, mb=limit_mb))
            return
        photo = next((a for a in given.attachments if a.get("kind") == "photo" and a.get("media_id")), None)
        if photo is None:
            other = next((a for a in given.attachments if a.get("media_id")), None)
            if other is not None:
                name = str(other.get("filename") or other.get("content_type") or "?")[:60]
                again(texts.text("not_image_file", campaign.texts, file=name))
            else:
                again(texts.text("need_image", campaign.texts))
            return
        try:
            data = await self.ctx.media.read(str(photo["media_id"]))
            info, picture = await asyncio.to_thread(images.inspect, data)
        except KeyError:
            again(texts.text("bad_image", campaign.texts, problem="файл не найден"))
            return
        except images.BadImage as exc:
            key = "too_large" if exc.code == "too_large" else "bad_image"
            again(texts.text(key, campaign.texts, mb=limit_mb, problem=exc.problem))
            return
        async with self.ctx.db.read() as session:
            refusal = await self._refusal(session, campaign)
        if refusal and camp.has_ended(campaign, self.now):
            await self._save(claim.id, state=Stage.CANCELLED)
            self.result.say(refusal)
            return
        started = time.perf_counter()
        outcome = await run_checks(self.ctx.db, claim, campaign, info, picture, source_for(self.ctx), self.now)
        elapsed = int((time.perf_counter() - started) * 1000)
        await self._decide(claim, campaign, outcome, str(photo["media_id"]), outcome.record(elapsed, info))

    async def _decide(
        self, claim: CashbackClaim, campaign: CashbackCampaign, outcome: Outcome, media_id: str, record: dict[str, Any]
    ) -> None:
        from otklik.platform.audit import audit

        values: dict[str, Any] = {
            "screenshot_media_id": media_id,
            "screenshot_hash": outcome.phash,
            "screenshot_at": self.now,
            "checks": record,
            "fraud_flag": outcome.fraud,
        }
        if outcome.match is not None and outcome.match.review is not None:
            values["wb_feedback_id"] = outcome.match.review.id
            values["matched"] = outcome.match.review.snapshot()
        async with self.ctx.db.write() as session:
            row = await session.get(CashbackClaim, claim.id)
            if row is None or row.state != Stage.SCREENSHOT:
                return
            if outcome.decision == "approve" and (await camp.usage(session, campaign.id)).exhausted(campaign):
                outcome.decision = "moderate"
                outcome.reasons.append("budget_exhausted")
            if outcome.decision == "approve":
                values.update(
                    state=Stage.APPROVED,
                    decided_at=self.now,
                    decided_by="bot",
                    rewarded_feedback_id=values.get("wb_feedback_id"),
                    reasons={"items": []},
                )
                kind = "claim.auto_approve"
            elif outcome.decision == "reject":
                values.update(
                    state=Stage.REJECTED,
                    decided_at=self.now,
                    decided_by="bot",
                    reject_reason=outcome.reject_reason,
                    reasons={"items": outcome.reasons},
                )
                kind = "claim.auto_reject"
            else:
                values.update(state=Stage.MODERATION, moderation_at=self.now, reasons={"items": outcome.reasons})
                kind = "claim.to_moderation"
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = self.now
            audit(
                session,
                "bot",
                kind,
                "claim",
                row.id,
                {"reasons": outcome.reasons, "fraud": outcome.fraud},
                now=self.now,
            )
            claim = row
        values_text = _values(claim, campaign)
        if claim.state == Stage.APPROVED:
            self.result.say(texts.text("approved", campaign.texts, **values_text))
        elif claim.state == Stage.REJECTED:
            self.result.say(texts.text("already_rewarded", campaign.texts, **values_text))
            return
        else:
            key = "moderation_slow" if outcome.wb_down else "moderation"
            self.result.say(texts.text(key, campaign.texts, **values_text))
        self._prompt(claim, campaign)

    async def _payout(self, claim: CashbackClaim, campaign: CashbackCampaign, given: BuyerInput) -> None:
        parsed = parse_payout(given.text) if not given.attachments else PayoutProblem.UNRECOGNISED
        if given.text and not given.sealed:
            await self._redact(given)  # a flow version without `sensitive: true` at the payout question
        if not isinstance(parsed, PayoutDetails):
            key = {
                PayoutProblem.CARD_LUHN: "payout_card_luhn",
                PayoutProblem.PHONE_INVALID: "payout_phone",
                PayoutProblem.BANK_MISSING: "payout_bank",
            }.get(parsed, "payout_unrecognised")
            self.result.say(texts.text(key, campaign.texts))
            self._wait("payout", claim, nudge=not claim.nudges.get("payout"))
            return
        from otklik.platform.audit import audit

        secret = seal(self.ctx.vault, parsed)
        async with self.ctx.db.write() as session:
            row = await session.get(CashbackClaim, claim.id)
            if row is None or not needs_payout(row):
                return
            row.payout_secret, row.payout_method, row.payout_masked = secret, parsed.method, parsed.masked()
            row.updated_at = self.now
            await self._unseal_done(given, session)
            audit(session, "bot", "claim.payout_details", "claim", row.id, {"method": parsed.method}, now=self.now)
            claim = row
        self.result.say(texts.text("payout_saved", campaign.texts, **_values(claim, campaign)), *STATUS_BUTTON)

    async def _unseal_done(self, given: BuyerInput, session: AsyncSession | None = None) -> None:
        """Drop the message's encrypted copy of the raw answer once it is read: the details live only on
        the claim (and are erased with it). In the claim's transaction when it stores them."""
        if not given.sealed or given.message_id is None or self._unsealed:
            return
        if session is None:
            async with self.ctx.db.write() as own:
                await self._unseal_done(given, own)
            return
        message = await session.get(Message, given.message_id)
        if message is not None and SEALED in (message.payload or {}):
            message.payload = {k: v for k, v in message.payload.items() if k != SEALED}
        self._unsealed = True

    async def _redact(self, given: BuyerInput) -> None:
        """Fallback for a flow version whose payout question is not `sensitive: true` (stored before it was):
        the message was written unmasked, so mask it, the inbox preview and the flow variables now. With
        the sensitive question ingest never writes the details (`otklik.conversations.sealed`)."""
        if given.message_id is None:
            return
        masked = mask_digits(given.text)
        async with self.ctx.db.write() as session:
            await session.execute(update(Message).where(Message.id == given.message_id).values(text=masked))
            conv = await session.get(Conversation, self.conversation_id)
            if conv is not None:
                conv.last_text = masked[:200]
                state = ConversationState.from_dict(conv.state)
                if state.vars.get("last_text") is not None:
                    conv.state = redact_var(state, "last_text").to_dict()

    # --- nudges ------------------------------------------------------------------------------

    async def _nudge(self, current: tuple[CashbackClaim, CashbackCampaign] | None) -> None:
        if current is None:
            return
        claim, campaign = current
        stage = "screenshot" if claim.state == Stage.SCREENSHOT else "payout" if needs_payout(claim) else ""
        if not stage or claim.nudges.get(stage):
            if stage:
                self._wait(stage, claim)
            return
        await self._save(claim.id, nudges={**claim.nudges, stage: self.now.isoformat()})
        self.result.say(texts.text(f"nudge_{stage}", campaign.texts, **_values(claim, campaign)), *STATUS_BUTTON)
        self._wait(stage, claim, nudge=False)

    # --- writing -----------------------------------------------------------------------------

    async def _save(self, claim_id: int, **values: Any) -> CashbackClaim:
        async with self.ctx.db.write() as session:
            row = await session.get(CashbackClaim, claim_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = self.now
            await session.flush()
            return row

    async def _flush(self) -> StepResult:
        return self.result  # the replies travel in the result (see StepResult.as_dict)
