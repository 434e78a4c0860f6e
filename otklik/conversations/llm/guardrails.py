"""Output checks for generated replies (Russian, Spanish, English). Pure functions, no I/O.

A generated reply is sent only when `check_reply` finds nothing. Each rule returns reasons as short
machine-readable strings (`promise:refund`, `medical:diagnosis:allergy`, `contact:phone`,
`grounding:low_support:0.42`, `leak:instructions`…), so the caller can log and count them.

1. Promises of money — refunds, compensation, payments, bonuses, discounts, or any amount of money —
   unless the flow granted exactly that (`Grant`). Money never comes from generated text.
2. Medical diagnoses or treatment not stated by an approved article the reply cites.
3. On marketplace chats: links, e-mails, phone numbers, @handles, messengers and other platforms
   (Wildberries fines sellers for contacts and luring buyers away), and every rule of the marketplace
   guard (`otklik.core.guard`: `marketplace:<reason>`, e.g. `marketplace:offsite`, `marketplace:insult`). Elsewhere: a link, e-mail or phone
   number that none of the cited articles contains (an invented contact).
4. Grounding: the reply cites known articles, and most of its content words (lemmas) are found in the
   cited articles; every number it states appears in them.
5. Leaks: quoting the system prompt, the canary marker, talking about its instructions.
6. Figures (`check_figures`, for a reply that phrases deterministic figures, e.g. a financing plan): every
   number must equal one the deterministic code produced (`otklik.core.figures`), no other currency;
   `check_figures_reply` applies it with rules 1 (money promises; amounts are the figures' business),
   2, 3 and 5.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

import phonenumbers

from otklik.conversations.knowledge.articles import Article
from otklik.conversations.knowledge.terms import content_terms
from otklik.conversations.nlu.text import lemmas, tokens
from otklik.core import guard as marketplace_guard
from otklik.core.figures import Figures, check_figures, without_figures

__all__ = [
    "CANARY",
    "PROMISE_KINDS",
    "Figures",
    "Grant",
    "GuardrailVerdict",
    "MedicalClaim",
    "Promise",
    "check_contacts",
    "check_figures",
    "check_figures_reply",
    "check_grounding",
    "check_leak",
    "check_medical",
    "check_promises",
    "check_reply",
    "find_contacts",
    "find_medical_claims",
    "find_promises",
    "grounding_support",
]

#: A marker placed in every system prompt; a reply that contains it is quoting the prompt.
CANARY = "otk-guard-7f3a9c"

PromiseKind = Literal["refund", "compensation", "payment", "bonus", "discount"]
PROMISE_KINDS: tuple[PromiseKind, ...] = ("refund", "compensation", "payment", "bonus", "discount")


@dataclass(frozen=True, slots=True)
class GuardrailVerdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, reasons: Iterable[str]) -> GuardrailVerdict:
        unique = list(dict.fromkeys(reasons))
        return cls(ok=not unique, reasons=unique)


@dataclass(frozen=True, slots=True)
class Grant:
    """Something the flow (deterministic code) decided to give; a reply may promise exactly this.
    `amount=None` allows the promise only when the reply names no amount."""

    kind: PromiseKind
    amount: Decimal | int | None = None


@dataclass(frozen=True, slots=True)
class Promise:
    kind: PromiseKind | Literal["amount"]
    text: str
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class MedicalClaim:
    kind: Literal["diagnosis", "treatment"]
    term: str  # canonical: allergy, burn, antihistamine...
    negated: bool = False


# --- 1. promises ------------------------------------------------------------------------------------

_W = r"[\w-]*"
_NEGATORS = {
    "не", "ни", "нельзя", "no", "ni", "nunca", "not", "never", "cannot", "can't", "won't", "don't", "isn't", "aren't",
}  # fmt: skip
_MONEY_NOUNS = (
    rf"деньг{_W}|денег|средств{_W}|стоимост{_W}|оплат{_W}|сумм{_W}|руб{_W}|₽|\d|dinero|plata|importe|"
    rf"monto|pago|peso{_W}|\$|money|payment|dollar{_W}|cost|price"
)
_BONUS_NOUNS = (
    rf"бонус{_W}|балл{_W}|к[эе]шб[эе]к{_W}|подар{_W}|вознагражд{_W}|bonus{_W}|cashback|regalo|reward{_W}|gift"
)
_DISCOUNT_NOUNS = rf"скидк{_W}|промокод{_W}|купон{_W}|descuento{_W}|cup[oó]n{_W}|discount{_W}|coupon{_W}|promo\s*code"
# (kind, verb, noun or None). A verb alone is enough when noun is None.
_PROMISE_PATTERNS: tuple[tuple[PromiseKind, str, str | None], ...] = (
    ("refund", r"верн(?:[её]м|у)", _MONEY_NOUNS),
    ("refund", r"верн(?:[её]т|ут)", _MONEY_NOUNS),  # "вам вернут деньги"; not when the marketplace does it
    ("refund", r"(?:оформим|сделаем|гарантируем|произвед[её]м|обеспечим)\s+(?:вам\s+)?возврат", None),
    ("refund", rf"возврат\s+(?:денег|средств|оплаты)\s+(?:вам\s+)?(?:гарантир{_W}|обеспеч{_W})", None),
    ("compensation", r"компенсиру(?:ем|ю|ет)|возмест(?:им|им\s+вам|ю)|возмещ(?:аем|у)", None),
    ("compensation", r"(?:выплатим|предоставим|дадим|получите|положена|оформим)", rf"компенсац{_W}|возмещени{_W}"),
    (
        "payment",
        r"(?:перевед[её]м|переведу|перечислим|перечислю|выплатим|выплачу|заплатим|заплачу|оплатим|"
        r"отправим|отправлю|пришл[её]м|начислим)",
        _MONEY_NOUNS,
    ),
    (
        "bonus",
        r"(?:начислим|дадим|подарим|дарим|выдадим|получите|предоставим|отправим|пришл[её]м|положен\w*)",
        _BONUS_NOUNS,
    ),
    ("discount", r"(?:дадим|предоставим|сделаем|получите|дарим|подарим|отправим|пришл[её]м|начислим)", _DISCOUNT_NOUNS),
    # Spanish
    (
        "refund",
        r"(?:le|te|les)\s+(?:devolvemos|devolveremos|vamos\s+a\s+devolver|reintegramos|reintegraremos|"
        r"reembolsamos|reembolsaremos)|devolveremos|reintegraremos|reembolsaremos",
        None,
    ),
    ("refund", r"(?:reintegro|reembolso|devoluci[oó]n\s+del\s+dinero)", None),
    ("compensation", r"(?:le|te|les)\s+compens(?:amos|aremos)|compensaremos|compensaci[oó]n", None),
    (
        "payment",
        r"(?:le|te|les)\s+(?:pagamos|pagaremos|transferimos|transferiremos|depositamos|acreditamos|"
        r"acreditaremos)|pagaremos|transferiremos",
        _MONEY_NOUNS,
    ),
    ("bonus", r"bonificaci[oó]n|bonificamos|bonificaremos|(?:le|te)\s+regalamos", None),
    (
        "discount",
        r"(?:le|te)\s+(?:damos|daremos|hacemos|haremos|ofrecemos|aplicamos)|(?:vas\s+a|va\s+a)\s+tener|"
        r"tendr[aá]s?",
        _DISCOUNT_NOUNS,
    ),
    # English
    (
        "refund",
        r"(?:we|i)\s*(?:will|'ll|shall|are\s+going\s+to)\s+(?:fully\s+)?refund|refund\s+you|money\s+back|"
        r"full\s+refund",
        None,
    ),
    ("compensation", r"(?:we|i)\s*(?:will|'ll)\s+(?:compensate|reimburse)|compensation|reimburse", None),
    ("payment", r"(?:we|i)\s*(?:will|'ll)\s+(?:pay|send|transfer|wire)", _MONEY_NOUNS),
    ("bonus", r"(?:we|i)\s*(?:will|'ll)\s+(?:give|send|add|credit)|you\s*(?:will|'ll)\s+(?:get|receive)", _BONUS_NOUNS),
    (
        "discount",
        r"(?:we|i)\s*(?:will|'ll)\s+(?:give|send|offer|apply)|you\s*(?:will|'ll)\s+(?:get|receive)",
        _DISCOUNT_NOUNS,
    ),
)
# A sentence that says the marketplace returns the money describes its process, not a seller promise.
_MARKETPLACE_DOES = re.compile(r"(?<!\w)(?:wildberries|вайлдберриз\w*|валдберис\w*|wb|вб|маркетплейс\w*|ozon|озон\w*)")
_COMPILED_PROMISES = [
    (kind, re.compile(rf"(?<!\w)(?:{verb})(?!\w)"), re.compile(rf"(?<!\w)(?:{noun})") if noun else None)
    for kind, verb, noun in _PROMISE_PATTERNS
]
_AMOUNT = re.compile(
    r"(?:(?:ar)?\$|us\$|usd|€|₽)\s*(?P<a>\d[\d\s.,]*\d|\d)"
    r"|(?P<b>\d[\d\s.,]*\d|\d)\s*(?:₽|руб|р\.|rub|usd|\$|долл|доллар|евро|€|peso|dólar|dolar|dollar|eur|ars|%)"
)
_THIRD_PERSON_REFUND = {"вернет", "вернут"}
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")


def _prepare(text: str) -> str:
    return text.lower().replace("ё", "е").replace("\u00a0", " ")


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s.strip()]


def _negated(sentence: str, start: int) -> bool:
    """The word right before `start` negates it ("не вернём", "no le devolvemos", "cannot refund")."""
    before = re.findall(r"[\w']+", sentence[:start])
    return bool(before) and before[-1] in _NEGATORS


def _amounts(sentence: str) -> list[Decimal]:
    result = []
    for match in _AMOUNT.finditer(sentence):
        raw = (match.group("a") or match.group("b") or "").replace(" ", "").replace(",", ".")
        raw = raw if raw.count(".") <= 1 else raw.replace(".", "")
        try:
            result.append(Decimal(raw).normalize())
        except InvalidOperation:
            continue
    return result


def find_promises(text: str) -> list[Promise]:
    """Promises of money found sentence by sentence; a negated verb ("не вернём") is not a promise.
    Every amount of money is reported too (kind "amount")."""
    found: list[Promise] = []
    for sentence in _sentences(_prepare(text)):
        amounts = _amounts(sentence)
        for kind, verb, noun in _COMPILED_PROMISES:
            for match in verb.finditer(sentence):
                if _negated(sentence, match.start()):
                    continue
                if match.group(0) in _THIRD_PERSON_REFUND and _MARKETPLACE_DOES.search(sentence):
                    continue
                if noun is None or noun.search(sentence):
                    found.append(Promise(kind, sentence.strip(), amounts[0] if amounts else None))
                    break
        found.extend(Promise("amount", sentence.strip(), amount) for amount in amounts)
    return found


def _granted(promise: Promise, granted: Sequence[Grant]) -> bool:
    for grant in granted:
        grant_amount = None if grant.amount is None else Decimal(grant.amount).normalize()
        if promise.kind == "amount":
            if grant_amount is not None and grant_amount == promise.amount:
                return True
        elif grant.kind == promise.kind and (promise.amount is None or promise.amount == grant_amount):
            return True
    return False


def check_promises(text: str, granted: Sequence[Grant] = ()) -> list[str]:
    return [f"promise:{p.kind}" for p in find_promises(text) if not _granted(p, granted)]


# --- 2. medical claims ------------------------------------------------------------------------------

_CONDITIONS: dict[str, str] = {
    rf"аллерги{_W}|аллергическ{_W}|alergi{_W}|al[eé]rgic{_W}|allerg{_W}": "allergy",
    rf"ожог{_W}|обожгл{_W}|обжег{_W}|quemadur{_W}|burn|burns|burned": "burn",
    rf"дерматит{_W}|dermatitis": "dermatitis",
    rf"инфекци{_W}|infecci[oó]n{_W}|infection{_W}": "infection",
    rf"молочниц{_W}|candidiasis|thrush": "thrush",
    rf"цистит{_W}|cistitis|cystitis": "cystitis",
    rf"воспален{_W}|inflamaci[oó]n|inflammation": "inflammation",
    rf"экзем{_W}|eczema": "eczema",
    rf"крапивниц{_W}|urticaria|hives": "urticaria",
}
_TREATMENTS: dict[str, str] = {
    rf"антигистамин{_W}|antihistam[ií]nic{_W}|antihistamine{_W}|супрастин{_W}|зиртек{_W}|тавегил{_W}|"
    rf"кларитин{_W}|лоратадин{_W}|цетиризин{_W}|эриус{_W}|диазолин{_W}|loratadin{_W}|cetirizin{_W}": "antihistamine",
    rf"гормональн{_W}|гидрокортизон{_W}|преднизолон{_W}|дексаметазон{_W}|corticoide{_W}|hidrocortisona|"
    rf"hydrocortisone|steroid{_W}": "corticosteroid",
    rf"антибиотик{_W}|antibi[oó]tic{_W}|antibiotic{_W}": "antibiotic",
    rf"маз(?:ь|и|ью|ями|ям)|pomada{_W}|ung[uü]ento{_W}|ointment{_W}": "ointment",
    rf"пантенол{_W}|бепантен{_W}|мирамистин{_W}|хлоргексидин{_W}|panthenol|clorhexidina": "antiseptic",
    rf"таблетк{_W}|лекарств{_W}|препарат{_W}|pastilla{_W}|medicamento{_W}|remedio{_W}|pill{_W}|medication{_W}|"
    rf"medicine{_W}": "medicine",
    rf"ибупрофен{_W}|парацетамол{_W}|нурофен{_W}|обезболива{_W}|ibuprofen{_W}|paracetamol|acetaminophen|"
    rf"painkiller{_W}": "painkiller",
}
_LEAD_INS = re.compile(
    r"(?<!\w)(?:это|у\s+вас|похоже\s+на|похоже|скорее\s+всего|вероятно|является|"
    r"es|son|tiene|ten[eé]s|parece|se\s+trata\s+de|probablemente|"
    r"it'?s|it\s+is|this\s+is|that'?s|you\s+have|looks\s+like|probably|likely)(?!\w)"
)
_CONTRAST = {"а", "но", "pero", "sino", "but", "и", "y", "and", "или", "o", "or"}
_COND = [(re.compile(rf"(?<!\w)(?:{p})(?!\w)"), name) for p, name in _CONDITIONS.items()]
_TREAT = [(re.compile(rf"(?<!\w)(?:{p})(?!\w)"), name) for p, name in _TREATMENTS.items()]


def find_medical_claims(text: str) -> list[MedicalClaim]:
    """Diagnoses ("это аллергия", "es una quemadura", "это не ожог") and treatments (drug names,
    ointments, pills) stated in the text."""
    claims: list[MedicalClaim] = []
    for sentence in _sentences(_prepare(text)):
        for lead in _LEAD_INS.finditer(sentence):
            lead_negated = _negated(sentence, lead.start())  # "no es una alergia"
            window = sentence[lead.end() : lead.end() + 60]
            words = re.findall(r"[\w']+", window)[:7]
            for index, word in enumerate(words):
                name = next((n for rx, n in _COND if rx.fullmatch(word)), None)
                if name is None:
                    continue
                back = words[max(0, index - 2) : index]
                while back and back[0] in _CONTRAST:
                    back.pop(0)
                if back and back[-1] in _CONTRAST:
                    back = []
                contrast = any(w in _CONTRAST for w in words[:index])
                negated = any(w in _NEGATORS for w in back) or (lead_negated and not contrast)
                claims.append(MedicalClaim("diagnosis", name, negated))
        for rx, name in _TREAT:
            if rx.search(sentence):
                claims.append(MedicalClaim("treatment", name))
    return list(dict.fromkeys(claims))


def check_medical(text: str, approved_articles: Sequence[Article] = ()) -> list[str]:
    """A claim passes only when an approved article makes the same claim (same term, same polarity)."""
    supported: set[MedicalClaim] = set()
    for article in approved_articles:
        if article.approved:
            supported.update(find_medical_claims(f"{article.title}.\n{article.body}"))
    reasons = []
    for claim in find_medical_claims(text):
        if claim not in supported:
            reasons.append(f"medical:{claim.kind}:{'not_' if claim.negated else ''}{claim.term}")
    return reasons


# --- 3. contacts ------------------------------------------------------------------------------------

_CONTACT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    (
        "url",
        re.compile(
            r"(?:https?://|www\.)\S+|(?<![\w@.])[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\."
            r"(?:ru|com|net|org|рф|su|ar|io|me|info|shop|store|online|site|biz|app|link|ly|gl|to|co|"
            r"pro|by|kz|ua)(?!\w)(?!\.\w)(?:/\S*)?"
        ),
    ),
    ("handle", re.compile(r"(?<![\w@.])@[a-z0-9_]{3,}")),
    ("phone", re.compile(r"\+\d[\d\s\-()]{8,}\d")),
    (
        "messenger",
        re.compile(
            r"(?<!\w)(?:telegram|телеграм\w*|телег[аиуеой]|тг|tg|whats\s*app|wh?atsapp?|ватсап\w*|вотсап\w*|вацап\w*|"
            r"воцап\w*|wasap|guasap|wpp|viber|вайбер\w*|skype|скайп\w*|discord|дискорд\w*|"
            r"мессенджер\w*|messenger|mensajer[ií]a|instagram|инстаграм\w*|инст[аеуы]|insta|vk|вк|вконтакт\w*|"
            r"facebook|фейсбук\w*|fb|одноклассник\w*|tiktok|тикток\w*|личк\w*|"
            r"ozon|озон\w*|яндекс\s*маркет\w*|авито|avito|mercado\s*libre|соцсет\w*|redes\s+sociales|"
            r"social\s+(?:media|network)s?)(?!\w)"
        ),
    ),
)
_PHONE_REGIONS = ("RU", "AR", "KZ", "BY", "US")


def find_contacts(text: str) -> list[tuple[str, str]]:
    """(kind, text) for every link, e-mail, @handle, phone number and messenger/platform name."""
    prepared = _prepare(text)
    found: list[tuple[str, str]] = []
    for kind, rx in _CONTACT_PATTERNS:
        found.extend((kind, m.group(0)) for m in rx.finditer(prepared))
    for region in _PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            found.append(("phone", match.raw_string))
    return list(dict.fromkeys(found))


def _contact_key(kind: str, value: str) -> tuple[str, str]:
    return (kind, re.sub(r"\D", "", value)[-10:] if kind == "phone" else value.lower().rstrip(".,;:)/"))


def check_contacts(text: str, channel_is_marketplace: bool, articles: Sequence[Article] = ()) -> list[str]:
    contacts = find_contacts(text)
    if channel_is_marketplace:  # and the marketplace guard's every rule (`marketplace:<reason>`)
        guard = [f"marketplace:{r}" for r in marketplace_guard.check(text).reasons if r != "empty"]
        return [f"contact:{kind}" for kind, _ in contacts] + guard
    # Elsewhere a contact is fine when an article gives it; an invented one is not.
    known = {_contact_key(k, v) for a in articles for k, v in find_contacts(f"{a.title}\n{a.body}")}
    return [
        f"contact:{kind}_not_in_articles"
        for kind, value in contacts
        if kind not in ("messenger", "handle") and _contact_key(kind, value) not in known
    ]


# --- 4. grounding -----------------------------------------------------------------------------------

_SMALL_TALK = {
    "ru": "здравствуйте добрый день вечер утро спасибо благодарим пожалуйста извините извинить жаль сожаление "
    "понимаем понимать вопрос обращение помочь рады рад надеемся надеяться подсказать уточнить напишите "
    "написать сообщите сообщить обратиться ответ ответить если нужно нужна помощь хорошего дня",
    "es": "hola buenas buen día gracias disculpá disculpe perdón lamentamos lamentar entendemos entender consulta "
    "ayudar ayuda contanos escribinos avisanos saludos quedamos atentos cualquier duda",
    "en": "hello hi thanks thank sorry apologize understand question help glad hope let know reach feel free",
}


@dataclass(frozen=True, slots=True)
class Support:
    """How much of a reply the cited articles back up."""

    overall: float
    weakest_sentence: float
    unsupported: tuple[str, ...]
    unsupported_numbers: tuple[str, ...]


def _vocabulary(articles: Sequence[Article], language: str) -> set[str]:
    words: set[str] = set()
    for article in articles:
        words.update(lemmas(f"{article.title} {' '.join(article.tags)} {article.body}", language))
    for lang in {language[:2], "en"}:
        words.update(lemmas(_SMALL_TALK.get(lang, ""), language))
    return words


def grounding_support(text: str, articles: Sequence[Article], language: str) -> Support:
    """Share of the reply's content lemmas found in the articles (overall and for the weakest sentence
    with 4+ content words), and the numbers the articles do not contain."""
    vocabulary = _vocabulary(articles, language)
    source_tokens = {t for a in articles for t in tokens(f"{a.title} {a.body}")}
    all_terms: list[str] = []
    weakest = 1.0
    for sentence in _sentences(text):
        terms = content_terms(sentence, language)
        all_terms.extend(terms)
        if len(terms) >= 4:
            weakest = min(weakest, sum(t in vocabulary for t in terms) / len(terms))
    missing = tuple(dict.fromkeys(t for t in all_terms if t not in vocabulary))
    overall = (sum(t in vocabulary for t in all_terms) / len(all_terms)) if all_terms else 0.0
    numbers = tuple(dict.fromkeys(t for t in tokens(text) if t.isdigit() and t not in source_tokens))
    return Support(round(overall, 3), round(weakest, 3), missing, numbers)


def check_grounding(
    text: str,
    cited_ids: Sequence[str],
    articles: Sequence[Article],
    language: str,
    *,
    min_support: float = 0.6,
    min_sentence_support: float = 0.34,
) -> list[str]:
    """Citations must name retrieved articles; the reply must be mostly made of the cited articles' words."""
    known = {a.id: a for a in articles}
    if not cited_ids:
        return ["grounding:no_citation"]
    unknown = [c for c in cited_ids if c not in known]
    if unknown:
        return [f"grounding:unknown_citation:{c}" for c in unknown]
    support = grounding_support(text, [known[c] for c in dict.fromkeys(cited_ids)], language)
    reasons = []
    if support.overall < min_support:
        reasons.append(f"grounding:low_support:{support.overall:.2f}")
    if support.weakest_sentence < min_sentence_support:
        reasons.append(f"grounding:unsupported_sentence:{support.weakest_sentence:.2f}")
    reasons.extend(f"grounding:unsupported_number:{n}" for n in support.unsupported_numbers)
    return reasons


# --- 5. leaks ---------------------------------------------------------------------------------------

_LEAK = re.compile(
    r"системн\w*\s+(?:промпт\w*|подсказк\w*|инструкци\w*|сообщени\w*|настройк\w*)|промпт\w*|"
    r"(?:мои|моим|моих|свои|своим|своих)\s+инструкци\w*|мне\s+(?:было\s+)?(?:велено|поручено|приказано)|"
    r"(?:игнорир\w*|проигнорир\w*|забуд\w*|забыв\w*|нарушу|нарушаю)\s+(?:все\s+|свои\s+|мои\s+|предыдущие\s+|"
    r"ваши\s+|эти\s+)?(?:инструкци\w*|правил\w*|указани\w*|ограничени\w*)|как\s+языковая\s+модель|"
    r"system\s+(?:prompt|message|instructions?)|(?:my|previous)\s+instructions|as\s+an\s+ai\b|"
    r"as\s+a\s+language\s+model|ignor\w*\s+(?:all\s+|my\s+|your\s+|previous\s+|the\s+)*(?:instructions|rules)|"
    r"(?:mis|tus)\s+instrucciones|prompt\s+del\s+sistema|como\s+modelo\s+de\s+lenguaje|"
    r"(?:olvid|ignor)\w*\s+(?:mis\s+|las\s+|tus\s+|sus\s+|todas\s+las\s+)?(?:instrucciones|reglas)"
)
_SHINGLE = 7


def _shingles(words: Sequence[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def check_leak(text: str, system_prompt: str = "") -> list[str]:
    """The reply quotes the prompt (canary, 7 words in a row) or talks about its instructions."""
    reasons = []
    if CANARY in text:
        reasons.append("leak:canary")
    if system_prompt and _shingles(tokens(text)) & _shingles(tokens(system_prompt)):
        reasons.append("leak:system_prompt")
    if _LEAK.search(_prepare(text)):
        reasons.append("leak:instructions")
    return reasons


# --- all together -----------------------------------------------------------------------------------


def check_reply(
    text: str,
    *,
    language: str,
    channel_is_marketplace: bool,
    articles: Sequence[Article] | None = None,
    cited_ids: Sequence[str] | None = None,
    granted: Sequence[Grant] = (),
    system_prompt: str = "",
    min_support: float = 0.6,
) -> GuardrailVerdict:
    """Every rule at once. `articles=None` means the reply is not an answer from articles (e.g. a
    review reply): grounding is not checked and no medical claim is supported."""
    cited = [a for a in (articles or []) if cited_ids and a.id in cited_ids]
    reasons = check_promises(text, granted)
    reasons += check_medical(text, [a for a in cited if a.approved])
    reasons += check_contacts(text, channel_is_marketplace, cited)
    if articles is not None:
        reasons += check_grounding(text, list(cited_ids or []), articles, language, min_support=min_support)
    reasons += check_leak(text, system_prompt)
    if not text.strip():
        reasons.append("empty")
    return GuardrailVerdict.of(reasons)


def check_figures_reply(
    text: str,
    figures: Figures,
    *,
    language: str,
    channel_is_marketplace: bool,
    system_prompt: str = "",
    max_chars: int = 1500,
) -> GuardrailVerdict:
    """A reply that phrases figures deterministic code produced (a financing plan): every number in it must
    be one of `figures` (of its kind: money, percent, other) and the `required` ones must be there
    (`figure:*`); no promise of a refund, payment, bonus or discount (an amount alone is no promise here:
    the figure check owns amounts), no diagnosis or treatment, no contact (rule 3 without articles: none
    may be invented), no leak; at most `max_chars`."""
    if len(text) > max_chars:  # before the other rules: some of them cost more than linear time
        return GuardrailVerdict.of(["too_long"])
    reasons = [r for r in check_promises(text) if r != "promise:amount"]
    reasons += check_medical(text)
    reasons += check_contacts(without_figures(text, figures, language), channel_is_marketplace)  # 7 559 496.27
    reasons += check_figures(text, figures, language=language)
    reasons += check_leak(text, system_prompt)
    if not text.strip():
        reasons.append("empty")
    return GuardrailVerdict.of(reasons)
