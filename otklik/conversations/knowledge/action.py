"""The `knowledge.answer` action: answers from the pack's approved articles, phrased by the LLM when
one is configured and its reply passes the guardrails, otherwise the article's own text."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from otklik.conversations import repo
from otklik.conversations.context import AccountInfo
from otklik.conversations.timers import ActionContext, QuickContext


@lru_cache(maxsize=16)
def _knowledge_base(pack: str, threshold: float) -> Any:
    from otklik.conversations.knowledge import KnowledgeBase, KnowledgeSettings

    return KnowledgeBase.from_pack(pack, KnowledgeSettings(threshold=threshold))


async def answer(ctx: ActionContext | QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """args: `question` (default: the buyer's last text), optional `product`, `kind` (e.g. side_effect:
    only approved articles of that kind may answer). Returns {found, text, articles, source}.

    Quick (`QuickContext`, registered with `quick_if`: no LLM configured): BM25 over the pack's articles,
    in memory, inside the step. Slow (`ActionContext`, an LLM is configured): the LLM phrases the answer,
    outside any transaction."""
    if isinstance(ctx, QuickContext):
        account, language, variables = ctx.account, ctx.language, ctx.vars
        threshold, llm, marketplace_kinds = ctx.settings.knowledge_threshold, None, ctx.marketplace_kinds
    else:
        runtime = ctx.runtime
        async with runtime.db.read() as session:
            conv = await repo.load_conversation(session, conversation_id=ctx.conversation_id, lock=False)
        if conv is None:
            return {"found": False}
        account = runtime.accounts[conv.channel_account_id]
        language = conv.contact_language or runtime.engine_for(account.id).pack.language
        variables, threshold, llm = conv.state.get("vars", {}), runtime.settings.knowledge_threshold, runtime.llm
        marketplace_kinds = runtime.marketplace_kinds
    question = str(args.get("question") or variables.get("last_text") or "").strip()
    if not question:
        return {"found": False}
    return await _answer(question, args, account, language, threshold, llm, marketplace_kinds)


async def _answer(
    question: str,
    args: dict[str, Any],
    account: AccountInfo,
    language: str,
    threshold: float,
    llm: Any,
    marketplace_kinds: frozenset[str],
) -> dict[str, Any]:
    from otklik.conversations.llm.answering import answer_question
    from otklik.conversations.llm.privacy import holds_personal_numbers

    kb = _knowledge_base(account.pack, threshold)
    reply = await answer_question(
        question[:1000],
        kb,
        language,
        channel_is_marketplace=account.kind in marketplace_kinds,
        product=args.get("product") or None,
        llm=None if holds_personal_numbers(question) else llm,  # the article answers offline
    )
    if reply is None:
        return {"found": False}
    wanted_kind = args.get("kind")
    if wanted_kind:
        article = kb.get(reply.article_ids[0])
        if article is None or article.kind != wanted_kind or not article.approved:
            return {"found": False}
    return {
        "found": True,
        "text": reply.text,
        "articles": list(reply.article_ids),
        "confidence": round(reply.confidence, 3),
        "source": reply.source,
    }
