"""`financing.simulate` when an LLM is configured (the action is slow then): the simulation runs in a short
read transaction, exactly as the quick action does; then, with no transaction open, the LLM may rewrite the
templated reply in the conversation's language. Its text replaces the template's only when every number in
it equals a number the simulator produced (`otklik.core.figures`, `check_figures_reply`): a changed digit,
an invented number, a number written in another format that reads differently, another currency, a promise
or a contact, a timeout or a server error → the templated reply is sent, the reasons are logged and
recorded (`llm_fallback` in the event log, `phrasing` in the result). Buttons always come from the
simulator. The buyer's message is not sent to the model."""

from __future__ import annotations

import logging
from typing import Any

from otklik.adapters.db.models import EventLog
from otklik.capabilities.financing import service
from otklik.capabilities.financing.actions import Outcome, Step, run
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.llm.tasks import phrase_figures
from otklik.conversations.timers import ACTION_MESSAGES, ActionContext

log = logging.getLogger(__name__)

PURPOSE = "phrase_figures"


async def simulate_and_phrase(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    runtime = ctx.runtime
    async with runtime.db.read() as session:
        conv = await repo.load_conversation(session, conversation_id=ctx.conversation_id, lock=False)
        if conv is None:
            return {"ok": True, "status": "other"}
        account = runtime.accounts[conv.channel_account_id]
        language = conv.contact_language or runtime.engine_for(account.id).pack.language or "es"
        step = Step(language, conv.state.get("vars", {}), ctx.last_inbound, account.pack)
        outcome = await run(step, args, service.session_fetch(session))
    # the read transaction is over: nothing is held open while the model writes
    if outcome.figures is None or runtime.llm is None:
        return outcome.result
    return await _phrase(ctx, outcome, language, account.kind in runtime.marketplace_kinds)


async def _phrase(ctx: ActionContext, outcome: Outcome, language: str, marketplace: bool) -> dict[str, Any]:
    result = outcome.result
    message = result[ACTION_MESSAGES][0]
    rejected: list[str] = []

    def on_reject(_purpose: str, reasons: list[str], _raw: str) -> None:
        rejected.extend(reasons)

    assert outcome.figures is not None
    text = await phrase_figures(
        ctx.runtime.llm,
        str(message["text"]),
        outcome.figures,
        language,
        marketplace,
        facts=outcome.facts,
        on_reject=on_reject,
    )
    if text is not None:
        message["text"] = text  # the buttons stay the simulator's
        result["phrasing"] = {"source": "llm"}
        return result
    reasons = list(dict.fromkeys(rejected))[:10] or ["no_text"]
    result["phrasing"] = {"source": "template", "reasons": reasons}
    log.info("financing: the templated reply was sent instead of the LLM's (%s)", ", ".join(reasons))
    async with ctx.runtime.db.write() as session:
        session.add(
            EventLog(
                ts=utcnow(),
                actor="llm",
                kind="llm_fallback",
                subject_type="conversation",
                subject_id=str(ctx.conversation_id),
                data={"purpose": PURPOSE, "status": result.get("status"), "reasons": reasons},
            )
        )
    return result
