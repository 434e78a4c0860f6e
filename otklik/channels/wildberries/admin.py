"""Connecting a Wildberries API key (admin Settings and `otklik channels add wildberries`) and testing it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from otklik.adapters.wildberries.token import Lang, TokenProblem
from otklik.core.errors import InvalidInput, Unavailable
from otklik.platform.channel_accounts import mask
from otklik.platform.channel_admin import Check, audit_added, check_name, check_pack
from otklik.platform.plugins import Connected

log = logging.getLogger(__name__)
MAX_WB_TOKEN = 4096  # WB tokens are ~400-700 characters; anything far longer is not one


def _lang(language: str) -> Lang:
    return "ru" if language == "ru" else "en"


def _scrub(text: str, token: str) -> str:
    """An error text to show: capped, and never the token itself."""
    return text.replace(token, mask(token))[:300] if token else text[:300]


def check_wb_token(token: str, lang: str = "en") -> tuple[str, list[TokenProblem]]:
    """The pasted WB token, cleaned, and its non-blocking problems; InvalidInput (clear text) otherwise."""
    from otklik.adapters.wildberries.accounts import check_token as wb_check_token

    token = (token or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise InvalidInput("paste the Wildberries API token (seller portal → Settings → API access)")
    if len(token) > MAX_WB_TOKEN:
        raise InvalidInput(f"this is not a Wildberries API token: it is longer than {MAX_WB_TOKEN} characters")
    try:
        return token, wb_check_token(token)
    except InvalidInput as exc:
        blocking = exc.details if isinstance(exc.details, list) else []
        if blocking:  # expired, read-only, a missing category: said in the admin's language
            texts = [p.text(_lang(lang)) for p in blocking]
            raise InvalidInput(" ".join(texts), details=texts) from None
        raise InvalidInput(_scrub(exc.user_message, token)) from None


async def _ping_wb(otklik: Any, account_id: int, name: str, token: str, lang: str) -> None:
    """`GET /ping` on the content API with this token: WB checks the signature, the expiry and the scope."""
    from otklik.adapters.wildberries import WBAuthError, WBError
    from otklik.adapters.wildberries.accounts import INTERACTIVE_RETRY, WBAccount, client_for

    try:
        async with client_for(
            WBAccount(account_id, name, token),
            otklik.settings,
            limiters=otklik.ctx.wb_limiters,
            retry=INTERACTIVE_RETRY,
            timeout=15.0,
        ) as wb:
            await wb.ping("content")
    except WBAuthError as exc:  # 401/403: refused, expired, revoked or out of scope
        raise InvalidInput(f"{exc.user_message(_lang(lang))} ({_scrub(str(exc), token)})") from None
    except WBError as exc:
        log.warning("WB ping failed: %s", type(exc).__name__)
        raise Unavailable(f"{exc.user_message(_lang(lang))} ({_scrub(str(exc), token)})") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"Wildberries did not answer ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True)
class WBConnected:
    id: int
    name: str
    masked: str  # the token as shown from now on
    warnings: list[str]  # non-blocking problems, e.g. "expires in 5 days"


async def connect_wildberries(
    otklik: Any,
    token: str,
    *,
    name: str = "",
    pack: str = "",
    actor: str,
    lang: str = "en",
    check: bool = True,
) -> WBConnected:
    """Connect a WB API key (admin Settings and `otklik channels add wildberries`): the JWT is read
    (not a token / expired / read-only / missing Feedbacks or Content -> InvalidInput, nothing stored),
    WB is pinged with it unless `check` is off, then it is stored encrypted and the addition audited."""
    from otklik.adapters.wildberries.accounts import KIND
    from otklik.channels.wildberries.accounts import add_wb_account

    token, _problems = check_wb_token(token, lang)
    name = check_name(name) or KIND
    pack = pack or otklik.settings.default_pack
    check_pack(otklik, pack)
    if check:
        await _ping_wb(otklik, 0, name, token, lang)
    account_id, problems = await add_wb_account(otklik.db, otklik.vault, token, name=name, pack=pack)
    await audit_added(otklik, actor, account_id, {"kind": KIND, "name": name, "pack": pack, "checked": check})
    return WBConnected(account_id, name, mask(token), [p.text(_lang(lang)) for p in problems])


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


async def connect_form(otklik: Any, fields: Mapping[str, Any], actor: str, language: str) -> Connected:
    """The Settings page's form (`ChannelKind.form`): the key is never sent back, only its masked form."""
    added = await connect_wildberries(
        otklik,
        _text(fields, "token"),
        name=_text(fields, "name"),
        pack=_text(fields, "pack") or otklik.settings.default_pack,
        actor=actor,
        lang=language,
    )
    return Connected(
        json={"id": added.id, "name": added.name, "token": added.masked, "warnings": added.warnings},
        notice=("settings.wb_added", {"name": added.name, "token": added.masked}),
        warnings=tuple(added.warnings),
    )


async def _test_wildberries(otklik: Any, account_id: int, name: str, token: str) -> Check:
    """The token's own payload (expired? scopes?) and then `GET /ping` on WB's content API with it."""
    if not token:
        return Check(False, "no token stored (a demo account, or add the key again)")
    try:
        token, problems = check_wb_token(token)
        await _ping_wb(otklik, account_id, name, token, "en")
    except (InvalidInput, Unavailable) as exc:
        return Check(False, f"Wildberries: {exc.user_message}")
    warnings = "; ".join(p.text("en") for p in problems)
    return Check(True, f"Wildberries: the token works{' (' + warnings + ')' if warnings else ''}")


async def check(otklik: Any, account: Any, secret: str) -> Check:
    return await _test_wildberries(otklik, account.id, account.name, secret)
