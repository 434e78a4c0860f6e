"""SMS.ru's delivery-status callback (`POST /webhooks/sms/smsru/<token>`, docs/reach.md): the token is a random
secret made when the SMS settings are saved (shown on Settings → SMS, sealed in the database), compared in
constant time; a wrong one is 404 and changes nothing. The body is read with a cap; SMS.ru expects "100"."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse, Response

from otklik.clock import utcnow
from otklik.platform.reach import config
from otklik.platform.reach.senders import parse_smsru_callback
from otklik.platform.reach.service import record_statuses
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large
from otklik.platform.webkit.deps import otklik_of

router = APIRouter()
MAX_BODY = 64 * 1024


@router.post("/webhooks/sms/smsru/{token}", include_in_schema=False)
async def smsru_status(request: Request, token: str = Path(max_length=100)) -> Response:
    otk = otklik_of(request)
    expected = config.callback_token(await config.load(otk.db), otk.vault)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        return PlainTextResponse("not found", status_code=404)
    if declared_too_large(request, MAX_BODY):
        return too_large()
    try:
        body = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        return too_large()
    await record_statuses(otk.db, "smsru", parse_smsru_callback(body), utcnow())
    return PlainTextResponse("100")
