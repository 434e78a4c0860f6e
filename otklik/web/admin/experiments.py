"""A/B tests and survey trees in the admin (docs/outreach.md).

- `/admin/abtests`: every test; a test's results per variant (sample, conversions, rate with its 95 % Wilson
  interval, two-proportion z-test against the first variant) and "end the test keeping variant X", which
  publishes the flow with that variant's text through the flow store (validated, versioned, audited as
  `flow.saved` / `flow.published`) and records `flow.ab_ended`.
- `/admin/surveys`: surveys with answers; per question the answer distribution (a bar per option), per run
  (`source`); the answers as CSV; installing a survey tree (YAML) as its flow.

Viewing needs `Perm.FLOWS_VIEW`; ending a test and installing a survey `Perm.FLOWS_EDIT`. CSRF by the guard.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from otklik.clock import utcnow
from otklik.conversations import abtests, surveys
from otklik.core import survey as survey_model
from otklik.core.errors import FlowInvalid, InvalidInput, NotFound, OtklikError
from otklik.core.flows.model import QuestionNode
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.templates import pick_language
from otklik.platform.audit import audit
from otklik.platform.plugins import resolve
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render

router = APIRouter()
VIEW, EDIT = need(Perm.FLOWS_VIEW), need(Perm.FLOWS_EDIT)
_TEST_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
_SURVEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_SURVEY_SOURCE = 64_000


def _test_key(key: str) -> str:
    if not _TEST_KEY.match(key):
        raise NotFound("no such A/B test")  # the key is not echoed: it is not even a valid one
    return key


def _survey_id(survey: str) -> str:
    if not _SURVEY.match(survey):
        raise NotFound("no such survey")
    return survey


def _counters(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for capability in otklik_of(request).capabilities:
        if capability.counters:
            for counter in resolve(capability.counters):
                out[counter.name] = counter.fn
    return out


@router.get("/abtests", response_class=HTMLResponse, include_in_schema=False)
async def abtests_page(request: Request, _p: Principal = Depends(VIEW)) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        tests = await abtests.list_tests(session)
    return render(request, "admin/abtests.html", tests=tests)


async def _results_page(request: Request, key: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        results = await abtests.test_results(session, key, _counters(request))
    return render(request, "admin/abtest.html", status_code=status_code, test=results, **context)


@router.get("/abtests/{key}", response_class=HTMLResponse, include_in_schema=False)
async def abtest_page(
    request: Request, key: str, done: str = Query("", max_length=16), _p: Principal = Depends(VIEW)
) -> HTMLResponse:
    return await _results_page(request, _test_key(key), notice="abtests.ended" if done == "ended" else None)


@router.post("/abtests/{key}/end", include_in_schema=False)
async def end_test(
    request: Request,
    key: str,
    variant: str = Form("", max_length=200),
    principal: Principal = Depends(EDIT),
) -> Response:
    """End the test keeping `variant`: a flow's test is replaced in the live flow by that variant (a new,
    published version); a broadcast's test is marked ended (the broadcast reads `kept`)."""
    otk = otklik_of(request)
    key = _test_key(key)
    async with otk.db.read() as session:
        results = await abtests.test_results(session, key)
    keys = [v.variant for v in results.variants]
    if results.status == "ended":
        return await _results_page(request, key, 409, errors=[f"the test already ended keeping {results.kept!r}"])
    if variant not in keys:
        return await _results_page(request, key, 422, errors=[f"variant: one of {', '.join(keys) or '—'}"])
    version: int | None = None
    place = results.flow_node
    if place is not None:
        flow_key, node_id = place
        try:
            live = await otk.flows.source(flow_key)  # the published version, not a draft
            pack = (await otk.flows.get(flow_key)).info.pack
            source = abtests.keep_variant_source(live, node_id, key, variant)
            info = await otk.flows.save(source, pack=pack, author=principal.actor, activate=True, expect_key=flow_key)
        except (FlowInvalid, InvalidInput, NotFound) as exc:
            return await _results_page(request, key, 422, errors=[exc.user_message])
        version = info.version
        await otk._rebuild_engines()
    async with otk.db.write() as session:
        await abtests.mark_ended(session, key, variant, principal.actor, utcnow())
        audit(session, principal.actor, "flow.ab_ended", "ab_test", key, {"kept": variant, "version": version})
    return RedirectResponse(f"/admin/abtests/{key}?done=ended", status_code=303)


# --- surveys ----------------------------------------------------------------------------------------


@router.get("/surveys", response_class=HTMLResponse, include_in_schema=False)
async def surveys_page(request: Request, _p: Principal = Depends(VIEW)) -> HTMLResponse:
    return await _surveys(request)


async def _surveys(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    async with otk.db.read() as session:
        found = await surveys.surveys(session)
    packs = sorted(otk.packs)
    return render(request, "admin/surveys.html", status_code=status_code, surveys=found, packs=packs, **context)


@router.post("/surveys", response_class=HTMLResponse, include_in_schema=False)
async def install_survey(
    request: Request,
    source: str = Form("", max_length=MAX_SURVEY_SOURCE * 4),
    pack: str = Form("", max_length=64),
    principal: Principal = Depends(EDIT),
) -> Response:
    otk = otklik_of(request)
    pack = pack.strip() or otk.settings.default_pack
    if len(source.encode()) > MAX_SURVEY_SOURCE:
        return await _surveys(request, 413, errors=[f"the survey is longer than {MAX_SURVEY_SOURCE} bytes"])
    try:
        tree, _info = await surveys.install(otk.flows, source, pack=pack, author=principal.actor)
    except FlowInvalid as exc:
        return await _surveys(request, 422, errors=[str(i) for i in exc.errors[:50]], sent=source[:MAX_SURVEY_SOURCE])
    except OtklikError as exc:
        return await _surveys(request, exc.status_code, errors=[exc.user_message], sent=source[:MAX_SURVEY_SOURCE])
    await otk._rebuild_engines()
    return RedirectResponse(f"/admin/surveys/{tree.id}", status_code=303)


@router.get("/surveys/{survey}", response_class=HTMLResponse, include_in_schema=False)
async def survey_page(
    request: Request,
    survey: str,
    source: str | None = Query(None, max_length=120),
    principal: Principal = Depends(VIEW),
) -> HTMLResponse:
    survey = _survey_id(survey)
    otk = otklik_of(request)
    async with otk.db.read() as session:
        counts = await surveys.distribution(session, survey, source)
        runs = await surveys.sources(session, survey)
    titles = await _titles(request, survey, principal.language)
    questions = []
    for question, options in counts.items():
        total = sum(n for _, n in options)
        rows = [
            {"option": o, "title": titles.get((question, o), o), "count": n, "share": n / total if total else 0.0}
            for o, n in options
        ]
        questions.append({"id": question, "title": titles.get((question, ""), question), "total": total, "rows": rows})
    return render(request, "admin/survey.html", survey=survey, questions=questions, runs=runs, source=source)


async def _titles(request: Request, survey: str, language: str) -> dict[tuple[str, str], str]:
    """Question texts and option titles from the survey's live flow (the ids when it is gone)."""
    otk = otklik_of(request)
    try:
        version = await otk.flows.get(survey_model.FLOW_PREFIX + survey)
        flow = parse_flow_yaml(version.source, known_flows=())
    except (NotFound, FlowInvalid):
        return {}
    out: dict[tuple[str, str], str] = {}
    for node_id, node in flow.nodes.items():
        if isinstance(node, QuestionNode) and node_id.startswith("q_"):
            question = node_id[2:]
            out[(question, "")] = pick_language(node.text, language, language).split("\n\n")[-1][:200]
            for option in node.options:
                out[(question, option.value)] = pick_language(option.title, language, language)[:100]
    return out


@router.get("/surveys/{survey}/answers.csv", include_in_schema=False)
async def survey_csv(
    request: Request,
    survey: str,
    source: str | None = Query(None, max_length=120),
    _p: Principal = Depends(VIEW),
) -> Response:
    survey = _survey_id(survey)
    db = otklik_of(request).db

    async def body() -> Any:
        async with db.read() as session:
            async for chunk in surveys.csv_rows(session, survey, source):
                yield chunk

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="survey-{survey}.csv"', "Cache-Control": "no-store"},
    )
