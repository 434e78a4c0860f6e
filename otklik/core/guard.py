"""The marketplace guard: what may not be written in a marketplace's buyer chat (pure, no I/O).

Wildberries fines sellers for contacts and for luring buyers away, and forbids one-word answers, insults
and negative words about the marketplace or other sellers. `check(text)` returns a `Verdict`: `allowed`,
stable reason codes (`REASONS`) and the spans found (offsets in the text as given, for highlighting).

How it reads a text (Russian first, Latin and transliterated forms too):

1. A *folded* view: compatibility forms (full-width letters, ligatures) and accents undone, zero-width and
   other format characters dropped, lower case, ё→е, Greek look-alikes as Latin; a word that mixes Latin
   and Cyrillic letters is written in its majority script (`тeлeгрaм` → `телеграм`); letters spaced out
   one by one are joined (`т е л е г р а м`). Every character keeps the offset it came from.
2. A *skeleton*: the folded view transliterated to Latin and reduced (`kh`→`h`, `ts`→`c`, `w`→`v`,
   `j`→`y`, doubled letters once), so `вотсап`, `whatsapp` and `vatsap` meet, and `в личку` and
   `v lichku` are one pattern.
3. A *digit* view for phone numbers: spelled numbers (`восемь девятьсот двенадцать`) become digits,
   `o`/`о` between digits is 0, then runs of digits with separators are judged by shape and context
   (`номер заказа`, `артикул`, prices, dates are not phones).

Rules are written per category, never per sentence; see docs/channels/wildberries-chat.md.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from otklik.core.redact import mask_cards

__all__ = [
    "MAX_CHARS",
    "REASONS",
    "Span",
    "Verdict",
    "check",
    "fallback",
    "mask_personal",
    "suggest",
]

#: Longer texts are refused without reading them (`too_long`): no marketplace message is this long.
MAX_CHARS = 5_000

#: Stable reason codes with a short explanation (ru, en), for the inbox, the audit view and the CLI.
REASONS: dict[str, tuple[str, str]] = {
    "phone": ("номер телефона", "a phone number"),
    "email": ("адрес или упоминание электронной почты", "an e-mail address or mail service"),
    "link": ("ссылка или домен", "a link or a domain"),
    "handle": ("@имя пользователя", "an @handle"),
    "messenger": ("мессенджер или соцсеть", "a messenger or social network"),
    "platform": ("другая торговая площадка", "another marketplace"),
    "offsite": ("приглашение перейти в другое место", "an invitation to move elsewhere"),
    "personal_data": ("запрос контактов или личных данных покупателя", "a request for the buyer's contacts or data"),
    "one_word": ("ответ из одного слова", "a one-word answer"),
    "insult": ("оскорбление или грубость", "an insult or rude words"),
    "negative_marketplace": (
        "негатив о маркетплейсе или других продавцах",
        "negative words about the marketplace or other sellers",
    ),
    "empty": ("пустой текст", "an empty text"),
    "too_long": ("слишком длинный текст", "the text is too long"),
}


@dataclass(frozen=True, slots=True)
class Span:
    start: int  # offsets in the text as given to `check`
    end: int
    reason: str
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "reason": self.reason, "text": self.text}


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reasons: tuple[str, ...]
    spans: tuple[Span, ...]

    def to_dict(self) -> dict[str, object]:
        return {"allowed": self.allowed, "reasons": list(self.reasons), "spans": [s.to_dict() for s in self.spans]}


# --- views with offsets --------------------------------------------------------------------------------


@dataclass(slots=True)
class _View:
    text: str
    origin: list[int]  # origin[i]: offset in the original text where text[i] comes from
    ends: list[int]  # ends[i]: offset just after it (a replacement covers what it replaced)

    def span(self, start: int, end: int) -> tuple[int, int]:
        if not self.origin:
            return 0, 0
        last = len(self.origin) - 1
        start, end = min(start, last), min(max(end, start + 1), last + 1)
        return self.origin[start], self.ends[end - 1]


def _resub(view: _View, rx: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> _View:
    """`rx.sub` that keeps every character's origin (a replacement covers its whole match)."""
    parts: list[str] = []
    origin: list[int] = []
    ends: list[int] = []
    last = 0
    for match in rx.finditer(view.text):
        start, stop = match.start(), match.end()
        parts.append(view.text[last:start])
        origin.extend(view.origin[last:start])
        ends.extend(view.ends[last:start])
        new = repl(match)
        if new and stop > start:
            parts.append(new)
            origin.extend([view.origin[start]] * len(new))
            ends.extend([view.ends[stop - 1]] * len(new))
        last = stop
    parts.append(view.text[last:])
    origin.extend(view.origin[last:])
    ends.extend(view.ends[last:])
    return _View("".join(parts), origin, ends)


def _drop(view: _View, rx: re.Pattern[str], inner: re.Pattern[str]) -> _View:
    """Remove the characters `inner` finds inside each match of `rx` (each kept one keeps its origin)."""
    keep = [True] * len(view.text)
    for match in rx.finditer(view.text):
        for gap in inner.finditer(match.group(0)):
            for k in range(match.start() + gap.start(), match.start() + gap.end()):
                keep[k] = False
    if all(keep):
        return view
    idx = [k for k, kept in enumerate(keep) if kept]
    return _View("".join(view.text[k] for k in idx), [view.origin[k] for k in idx], [view.ends[k] for k in idx])


_GREEK = str.maketrans("αβεηικμνορτυχ", "abenikmvoptux")
_LAT2CYR = str.maketrans("abcehkmnoptxy", "авсенкмпортху")
_CYR2LAT = str.maketrans("авсенкмпортхуь", "abcehkmnoptxyb")
_CYR = re.compile(r"[а-я]")
_LAT = re.compile(r"[a-z]")
_WORD = re.compile(r"[^\W\d_]+")
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


_BREVE = "\u0306"


@lru_cache(maxsize=4096)
def _char(ch: str) -> str:
    """What one character becomes: "" (dropped), " " or "\n" (a blank), or its folded letters; a
    combining breve stays as `_BREVE` (it makes the и before it a й)."""
    category = unicodedata.category(ch)
    if category in ("Cf", "Co", "Cs", "Cn") or ch in "\u00ad\u034f\u115f\u1160\u3164\uffa0":
        return ""  # zero-width, joiners, marks of direction, soft hyphens, private use, unassigned
    if category in ("Cc", "Zs", "Zl", "Zp"):
        return "\n" if ch in _LINE_BREAKS else " "
    out = []
    for c in unicodedata.normalize("NFKD", ch).lower():
        if unicodedata.category(c) == "Mn":
            if c == _BREVE:
                out.append(_BREVE)
            continue
        c = c.translate(_GREEK)
        out.append("е" if c == "ё" else c)
    return "".join(out)


def _base(text: str) -> _View:
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = _char(ch)
        if not folded:
            continue
        if folded in " \n":
            if out and out[-1] in " \n":  # one blank between words: bounded work for every pattern
                if folded == "\n":
                    out[-1] = "\n"
                continue
            out.append(folded)
            origin.append(i)
            continue
        for c in folded:
            if c == _BREVE:
                if out and out[-1] == "и":
                    out[-1] = "й"
                continue
            out.append(c)
            origin.append(i)
    return _View("".join(out), origin, [o + 1 for o in origin])


_INNER_AT = re.compile(r"(?<=[а-яё])[@0](?=[а-яё])|(?<=[a-z])0(?=[a-z])")  # an e-mail keeps its @
_SPACED = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ \-_*·~]{1,2}){3,}[^\W\d_](?![^\W\d_])")
_SPACED_GAP = re.compile(r"[ \-_*·~]+")
_SPACED_GAP_AFTER_FIRST = re.compile(r"(?<!^[вскуоияа])[ \-_*·~]+")
_HYPHENATED = re.compile(r"(?<![^\W\d_])[^\W\d_]++(?:-[^\W\d_]++)+")
_HYPHEN = re.compile(r"-")


def _fold_word(match: re.Match[str]) -> str:
    word = match.group(0)
    cyr, lat = len(_CYR.findall(word)), len(_LAT.findall(word))
    if not cyr or not lat:
        return word
    return word.translate(_LAT2CYR) if cyr >= lat else word.translate(_CYR2LAT)


def _fold(view: _View) -> _View:
    return _View(_WORD.sub(_fold_word, view.text), view.origin, view.ends)  # same length: origins hold


def _folded(text: str) -> tuple[_View, _View | None]:
    """The folded view, and an alternative one when letters were spaced out or hyphenated: there a
    one-letter preposition before the spaced letters stays a word of its own ("в т е л е г р а м") and
    hyphens inside words are dropped ("ин-ста-грам"). Names of messengers and platforms are looked for in
    both."""
    base = _resub(_base(text), _INNER_AT, lambda m: "a" if m.group(0) == "@" else "o")  # телегр@м, inst0gram
    view = _fold(_drop(base, _SPACED, _SPACED_GAP))
    if not _SPACED.search(base.text) and not _HYPHENATED.search(base.text):
        return view, None
    alternative = _drop(_drop(base, _SPACED, _SPACED_GAP_AFTER_FIRST), _HYPHENATED, _HYPHEN)
    return view, _fold(alternative)


_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i", "й": "y",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "х": "h", "ц": "c", "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "", "ы": "y", "ь": "", "э": "e",
    "ю": "yu", "я": "ya", "і": "i", "ї": "i", "є": "e", "ґ": "g",
}  # fmt: skip
_REDUCE = {
    "shch": "sh",
    "sch": "sh",
    "kh": "h",
    "ts": "c",
    "tz": "c",
    "ck": "k",
    "ph": "f",
    "w": "v",
    "q": "k",
    "j": "y",
}
_REDUCIBLE = re.compile(r"shch|sch|kh|t[sz]|ck|ph|[wqj]|['’`ʼ]")
_DOUBLED = re.compile(r"([a-z])\1+")


def _transliterated(view: _View) -> _View:
    parts: list[str] = []
    origin: list[int] = []
    ends: list[int] = []
    for ch, start, end in zip(view.text, view.origin, view.ends, strict=True):
        latin = _TRANSLIT.get(ch, ch)
        parts.append(latin)
        origin.extend([start] * len(latin))
        ends.extend([end] * len(latin))
    return _View("".join(parts), origin, ends)


def _skeleton(folded: _View) -> _View:
    view = _transliterated(folded)
    view = _resub(view, _REDUCIBLE, lambda m: _REDUCE.get(m.group(0), ""))
    return _resub(view, _DOUBLED, lambda m: m.group(1))


# --- spelled numbers and the digit view ----------------------------------------------------------------

_UNITS = {
    "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "одну": 1, "два": 2, "две": 2, "три": 3,
    "четыре": 4, "пять": 5, "шесть": 6, "семь": 7, "восемь": 8, "девять": 9,
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "nol": 0, "odin": 1, "dva": 2, "tri": 3, "chetyre": 4, "pyat": 5, "shest": 6, "sem": 7,
    "vosem": 8, "devyat": 9,
}  # fmt: skip
_TEENS = {
    "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14,
    "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19,
}  # fmt: skip
_TENS = {
    "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
    "восемьдесят": 80, "девяносто": 90,
}  # fmt: skip
_HUNDREDS = {
    "сто": 100, "двести": 200, "триста": 300, "четыреста": 400, "пятьсот": 500, "шестьсот": 600,
    "семьсот": 700, "восемьсот": 800, "девятьсот": 900,
}  # fmt: skip
_NUMERAL_WORD = "|".join(sorted([*_UNITS, *_TEENS, *_TENS, *_HUNDREDS, "плюс", "plus"], key=len, reverse=True))
_NUMERAL_RUN = re.compile(rf"(?<![^\W\d_])(?:{_NUMERAL_WORD})(?:[\s,\-]+(?:{_NUMERAL_WORD}))*(?![^\W\d_])")


def _spelled_digits(run: str) -> str:
    """`восемь девятьсот двенадцать` → `8 912`: hundreds, tens and units of one number are added up; a
    word that cannot continue the number starts the next one, a lone unit is one digit."""
    groups: list[str] = []
    hundreds = tens = units = -1

    def flush() -> None:
        nonlocal hundreds, tens, units
        if hundreds >= 0 or tens >= 0 or units >= 0:
            groups.append(str(max(hundreds, 0) + max(tens, 0) + max(units, 0)))
        hundreds = tens = units = -1

    for word in re.split(r"[\s,\-]+", run):
        if word in ("плюс", "plus"):
            flush()
            groups.append("+")
        elif word in _HUNDREDS:
            flush()
            hundreds = _HUNDREDS[word]
        elif word in _TEENS:
            if tens >= 0 or units >= 0:
                flush()
            tens, units = _TEENS[word], 0
        elif word in _TENS:
            if tens >= 0 or units >= 0:
                flush()
            tens = _TENS[word]
        elif word in _UNITS:
            if units >= 0:
                flush()
            units = _UNITS[word]
            if hundreds < 0 and tens < 0:
                flush()
    flush()
    return " ".join(groups).replace("+ ", "+")


_DIGIT_LOOKALIKE = re.compile(r"(?<=\d)[oо](?=\d)|(?<=\d)[lі|](?=\d)|(?<=\d)з(?=\d)")


def _digits_view(folded: _View) -> _View:
    view = _resub(folded, _NUMERAL_RUN, lambda m: f" {_spelled_digits(m.group(0))} ")
    return _resub(view, _DIGIT_LOOKALIKE, lambda m: {"з": "3", "l": "1", "і": "1", "|": "1"}.get(m.group(0), "0"))


_DIGIT_RUN = re.compile(r"\+?\s*\d(?:[\s\-‐‑‒–—.()_/*]{0,3}\d)*")
_AFTER_NOT_PHONE = re.compile(
    r"\s*(?:₽|руб|р\.|р(?![а-я])|rub|коп|шт|%|г(?![а-я])|кг|гр|мл|см|мм|м(?![а-я])|мин|сек|час|дн|дней|лет|раз)"
)
_BEFORE_ID = re.compile(
    r"(?:артикул\w*|арт\.?|nm\s*id|nm|заказ\w*|rid|штрих\w*|баркод\w*|barcode|ean|трек\w*|чек\w*|стикер\w*|"
    r"(?<![a-zа-я])id|инн|огрн\w*|сч[её]т\w*|отправлени\w*|поставк\w*|партии|партия|накладн\w*|договор\w*|"
    r"№|#)[\s:#№.-]*$"
)
_BEFORE_PHONE = re.compile(
    r"(?:тел\w*|phone|моб\w*|сотов\w*|звон\w*|позвон\w*|набер\w*|набира\w*|whats\w*|вотсап\w*|ватсап\w*|"
    r"вайбер\w*|viber|telegram\w*|телеграм\w*|тг|связ\w*)[^\w\n]{0,3}(?:\w+[^\w\n]{1,3}){0,2}$"
)
_DATE = re.compile(r"\d{1,2}[./]\d{1,2}[./]\d{2,4}")


def _phone_like(run: str, before: str, after: str) -> bool:
    digits = re.sub(r"\D", "", run)
    n = len(digits)
    plus = run.lstrip().startswith("+")
    if n < 7:
        return False
    if n > 15:  # several numbers typed together: look for a Russian mobile number among its groups
        return re.search(r"(?:^|\D)(?:\+?7|8)\D{0,3}9(?:\D{0,3}\d){9}(?!\d)", run) is not None
    if plus and n >= 10:
        return True
    if _AFTER_NOT_PHONE.match(after) or _DATE.search(run):
        return False
    if _BEFORE_ID.search(before[-30:]):
        return False  # an order, article, barcode, receipt or tracking number
    phone_cue = _BEFORE_PHONE.search(before[-40:]) is not None
    if n == 11 and digits[0] in "78" and digits[1] in "3489":
        return True
    if n == 10 and digits[0] == "9":
        return True
    formatted = re.search(r"\(\s*\d{3,5}\s*\)|\d-\d\d-\d\d(?!\d)|\d \d\d \d\d(?!\d)", run) is not None
    if n == 10 and digits[0] in "3489" and formatted:
        return True
    return phone_cue and 7 <= n <= 12


def _phone_spans(folded: _View) -> list[tuple[int, int]]:
    view = _digits_view(folded)
    found = []
    for match in _DIGIT_RUN.finditer(view.text):
        run = match.group(0)
        before, after = view.text[max(0, match.start() - 40) : match.start()], view.text[match.end() : match.end() + 8]
        if _phone_like(run, before, after):
            start = match.start() + (len(run) - len(run.lstrip()))
            found.append(view.span(start, match.end()))
    return found


# --- patterns -------------------------------------------------------------------------------------------

_B = r"(?<![a-zа-я0-9])"  # a word starts here
_E = r"(?![a-zа-я0-9])"  # a word ends here
_S = r"(?<![a-z0-9])"  # skeleton: a word starts here
_SE = r"(?![a-z0-9])"


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.VERBOSE)


_TLD = (
    r"ru|com|net|org|рф|ру|ком|su|io|me|info|shop|store|online|site|biz|app|link|ly|gl|to|co|pro|by|kz|ua|"
    r"tv|cc|xyz|club|top|ws|ee|page|onelink|ink|bio"
)
_SPACED_TLD = r"ru|ру|com|ком|рф|me|ме|org|орг|net|io|ly|gl|shop|store|site|online|info|biz|pro|xyz|club|page|bio"
_DOT_WORD = r"(?:\s?[(\[{<]\s?(?:\.|dot|точка|тчк)\s?[)\]}>]\s?|\s(?:dot|точка|тчк)\s)"

# Folded view (Cyrillic and Latin as written, homoglyphs folded).
_EMAIL_ADDRESS = _rx(
    rf"""(?<![a-z0-9._%+-])[a-z0-9._%+-]++\s?(?:
        @\s?[a-z0-9-]++(?:\s?(?:\.|{_DOT_WORD})\s?[a-z0-9-]++)*\s?(?:\.|{_DOT_WORD})\s?[a-zа-я]{{2,6}}|
        (?:[(\[{{<]\s?(?:at|собака|собачка)\s?[)\]}}>]|\s(?:собака|собачка|at|эт)\s)\s?
        [a-z0-9-]++\s?(?:\.|{_DOT_WORD})\s?(?:{_SPACED_TLD})
    ){_E}"""
)
_MAIL_SERVICE = _rx(
    rf"""{_B}(?:e-?mail|емейл\w*|имейл\w*|емайл\w*|имэйл\w*|мейл\w*|мэйл\w*|электронн\w*\s+почт\w*|
    эл\.\s*почт\w*|gmail\w*|джимейл\w*|гмейл\w*|гмайл\w*|яндекс[\s.-]*почт\w*|mail\s*\.?\s*ru|
    майл\s*(?:\.|точка)?\s*ру|rambler|рамблер\w*|outlook|hotmail|icloud|yahoo|proton\s*mail){_E}"""
)
_LINK = _rx(
    rf"""(?:https?|ftp)\s*:\s*/\s*/\s*\S+|{_B}www\s*\.\s*\S+|
    (?<![\w@.-])[a-zа-я0-9][a-zа-я0-9-]*+(?:\.[a-zа-я0-9-]++)*\.(?:{_TLD}){_E}(?!\.[a-z])(?:/\S*)?|
    (?<![\w@.-])(?=[0-9-]*[a-z])[a-z0-9-]++\s?(?:\s\.\s?|\.\s|{_DOT_WORD})\s?(?:{_SPACED_TLD}){_E}(?:\s?/\s?\S+)?|
    (?<![\w@.-])[а-я0-9][а-я0-9-]{{2,}}+(?:{_DOT_WORD}|\s?[(\[]\s?\.\s?[)\]]\s?)(?:{_SPACED_TLD}){_E}"""
)
_HANDLE = _rx(r"(?<![\w.@])@\s?[a-z0-9_][a-z0-9_.]{2,31}|(?<![\w.@])@[а-я0-9_]{3,32}")
_FOLDED_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", _EMAIL_ADDRESS),
    ("email", _MAIL_SERVICE),
    ("link", _LINK),
    ("handle", _HANDLE),
)

# Exempt words: a telegram (the paper kind) and the adjective "instagram-like" quoted from a buyer.
_EXEMPT = re.compile(rf"{_B}(?:телеграмм[аеуыоя]\w*|телеграммк\w*|инстаграмн\w*|instagramn\w*|телеграф\w*)")

# Skeleton view (transliterated, reduced): messengers, platforms, invitations, requests for data.
_MESSENGERS = _rx(
    rf"""{_S}(?:telegram\w*|teleg(?:a|i|u|e|oy|ami|ah)?|telegrm\w*|tg|tlg|
    vh?[aoe]c\s?ap\w*|vh?acap\w*|vhac\w*|vocap\w*|vh?a?c\s?ap|vocap|
    viber\w*|vayber\w*|vaiber\w*|viber|
    vk|vkontakt\w*|vkont\w*|vkontakte|
    instagram\w*|instagr\w*|insta|inst|instu|inste|instoy|instu|insto|igram|
    facebook\w*|faceb\w*|feysbuk\w*|fb|
    tik\s?tok\w*|tiktok\w*|
    youtube\w*|yutub\w*|yutyub\w*|you\s?tube|
    skype\w*|skayp\w*|diskord\w*|discord\w*|
    (?:v|na|iz)\s+odnoklasnik\w*|odnoklasniki\s*ru|
    mesendzher\w*|mesenger\w*|mesendzh\w*|
    socset\w*|socialn\w*\s+set\w*|social\s+(?:media|network)\w*|
    pinterest\w*|threads|tviter\w*|
    max\s+mesenger|mesendzher\s+max|snapchat|signal\s+messenger|icq|aska|asechk\w*){_SE}"""
)
_PLATFORMS = _rx(
    rf"""{_S}(?:ozon\w*|avito\w*|aliekspres\w*|aliexpres\w*|aliexpress|aliekspress|
    yandeks\s*market\w*|yandex\s*market\w*|ya\s*market|megamarket\w*|sbermegamarket\w*|lamoda\w*|
    kazanekspres\w*|kazanexpres\w*|magnit\s*market\w*|yula|yule|yulu|
    amazon\w*|ebay|temu|shein|dzhum|etsy){_SE}"""
)
_WB_SK = r"(?:vb|wb|vayld\w*|vaylb\w*|vildber\w*|valber\w*|valdber\w*|vaylber\w*|marketpleys\w*)"
_NOT_ORDER = (
    r"(?!\w*\s+(?:zakaz|artikul|stiker|shtrih|parti|postavk|vozvrat|zayavk|obrashen|trek|chek|yacheyk|korobk|upakovk|"
    r"pvz|punkt|razmer|model|tovar|otpravlen|sertifikat|dogovor|nakladn|partii|kartochk|sborochn|sklad)\w*)"
)
_NEG = r"(?:ne|ni|nelzya|nikogda|bez|zapresh\w*|zapreshen\w*|nedopustim\w*|ne\s+stoit|ne\s+nado|ne\s+nuzhno)"
_OFFSITE = _rx(
    rf"""{_S}(?:lichk\w*|lichn\w*\s+(?:sobshen\w*|sobsh\w*|perepisk\w*|chat\w*|kanal\w*|pism\w*|dialog\w*)|
    (?:v|na)\s+ls|direkt[aeu]?|direct|dm|v\s+pm|
    napryam\w*|v\s+obhod\w*|
    vne\s+(?:ploshadk\w*|{_WB_SK}|saita|sayta|chat\w*)|
    (?:za|bez|min)\w*\s+(?:marketpleys\w*|ploshadk\w*|posrednik\w*|komisi\w*\s+(?:ploshadk\w*|{_WB_SK}))|
    (?:zvonite|pozvonite|pozvoni|pozvonim|pozvonyu|perezvon(?:im|yu|ite|i)|nabirayte|naberite|nabrat|sozvon\w*|
    mozhete\s+(?:nam\s+|mne\s+)?(?:pozvonit|zvonit|dozvonit)|zvonit\s+(?:nam|mne)|pozvonit\s+(?:nam|mne))|
    po\s+(?:telefonu|nomeru(?!\s+(?:zakaz|artikul|stiker|shtrih|partii|postavk|vozvrat|zayavk))|pochte|mylu|emeylu|imeylu)|
    (?:na|v)\s+(?:pochtu|pochtovy\w*|mylo|emeyl|imeyl|meyl|email|e\s?mail)|
    nash\w*\s+(?:sayt\w*|sait\w*|grup\w*|kanal\w*|sobshestv\w*|akaunt\w*|profil\w*|stranic\w*|stranichk\w*|
      internet[-\s]?magazin\w*|magazin\w*\s+v\s+\w+|bot\w*|prilozheni\w*|blog\w*|kontakt\w*|telefon\w*|nomer{_NOT_ORDER}\w*)|
    (?:podpis\w*|dobav\w*|naydite|naydi|ishite|zahodite|zahodi|perehodite|perehodi|pereydite|pereydi)\s+(?:\w+\s+){{0,2}}
      (?:na\s+nas|nas|menya|k\s+nam|po\s+sylk\w*|v\s+profil\w*|v\s+\w+\s+profil\w*|v\s+shapk\w*)|
    dobavlyaytes\w*|dobavtes\w*|
    (?:svoy|svoe|svoya|sobstven\w*|otdeln\w*)\s+(?:internet[-\s]?magazin\w*|sayt\w*|kanal\w*|grup\w*|magazin\w*\s+v\s+\w+)|
    sylk\w*\s+(?:v|na)\s+(?:profil|opisani|shapk|bio|nash)\w*|po\s+sylk\w*|
    (?:napish|pish|stuch|obrat|obrash|svyazh|svyaz)\w*\s+(?:\w+\s+){{0,2}}(?:na\s+nomer|na\s+telefon|v\s+lichk\w*)|
    svyaz\w*\s+(?:s\s+)?(?:nami|mnoy|menya|prodavcom|magazinom)\s+(?:mozhno\s+)?(?:po|cherez|v|na)\s+(?!etom|etot|chat|zdes)\w+|
    cherez\s+(?!{_WB_SK}|chat\w*|etot|etom|ploshadk\w*|lichn\w*\s+kabinet\w*|poderzhk\w*)
      (?:sayt|bot|nas\s+napryam)\w*(?!\s+{_WB_SK})|
    (?:kontakt\w*|kontaktn\w*\s+dann\w*)\s+(?:v|na)\s+(?:profil|opisani|shapk|bio|stranic|kartochk)\w*|
    (?:moy|moi|moe|moyu|nash|nashi|nashe|nashu)\s+(?:nomer{_NOT_ORDER}|telefon|kontakt|nik|login|akaunt|pochta|mylo)\w*){_SE}"""
)
_VERBS = (
    r"(?:ostav|ostavl|prishl|prishli|prisyl|prisla|napish|napisat|ukazh|ukazat|ukazyv|prodikt|sobsh|skin|skid|kin|kinte|"
    r"dayte|day|otprav|nazov|nazvat|podskazh|utochn|predostav|podel|peredayte|zapish|diktuy|"
    r"nuzhen|nuzhna|nuzhno|nuzhny|nuzhno\s+znat|trebuet\w*|poprosim|poprosh\w*|hotim\s+uznat|skazhite|skazh|"
    r"mozhno|ne\s+mogli\s+by|mogli\s+by|mozhete|zapolnit|zapolnite|send|give|tell)\w*"
)
_FILLER = r"(?:[\s,]++(?:nam|mne|pozhaluysta|pls|plz|please|tut|syuda|zdes|srazu|seychas|eshe|takzhe|tozhe|"
_FILLER += r"v\s+chat\w*|v\s+otvet\w*|v\s+soobshen\w*|v\s+sobshen\w*|nam\s+tut|foto\w*|kopi\w*|skan\w*|snimok|snimki))*"
_TARGETS = (
    r"(?:(?:vash|vas|svoy|svoi|svoe|svoyu|svoego|svoey|vashego|vashey|vashu|vashe|vashi|vashim|your|kontaktn\w*|"
    r"mobiln\w*|polnoe|polnye|polnost\w*|ih|eto|tochn\w*|domashn\w*|aktualn\w*)\s+){0,2}"
    r"(?:nomer\w*\s+(?:telefon|mobiln|dlya\s+svyaz|vocap|vacap|vhacap|viber|vayber|telegram|kart|sotov)\w*|"
    r"nomer\w*+(?=\s*(?:[.,!?;:)]|$|\s+(?:pozhaluysta|dlya\s+svyaz|chtoby\s+(?:svyaz|pozvon|napis))))|"
    r"telefon\w*+(?!\s+(?:model|marki|razmer|diagonal|zaryad|ekran|kamer)\w*)|mobiln\w*+(?!\s+prilozh)|sotovy\w*|"
    r"kontakt\w*|kontaktn\w*\s+dan\w*|"
    r"adres\w*+(?!\s+(?:punkt|pvz|vydach|postamat|sklad|magazin|ofis|sayt|poderzhk)\w*)|"
    r"fio|f\s*i\s*o|familiy\w*|imya\s+i\s+familiy\w*|familiy\w*\s+i\s+imya|imya\s+otchestv\w*|otchestv\w*|"
    r"pasport\w*|snils|dat\w*\s+rozhdeni\w*|"
    r"(?:nomer\w*|dan\w*|rekvizit\w*|foto\w*|cifr\w*)\s+(?:vashey\s+|svoey\s+|bankovsk\w*\s+)?kart\w*|"
    r"kart\w*\s+(?:banka|dlya\s+(?:perevod|vozvrat|vyplat|zachislen))\w*|bankovsk\w*\s+kart\w*|"
    r"rekvizit\w*|cv|cvc\w*|srok\w*\s+deystvi\w*|kod\w*\s+(?:iz\s+sms|s\s+obratn\w*|bezopasnost)\w*|"
    r"pochtu|pochtovy\w*\s+adres\w*|email|e\s?mail|imeyl|emeyl|mylo|"
    r"lichn\w*\s+dan\w*|personaln\w*\s+dan\w*|pasportn\w*\s+dan\w*|"
    r"phone\s+number|phone|ful\s+name|card\s+number|"
    r"nik\w*\s+v\s+\w+|login\w*|sylk\w*\s+na\s+(?:vash|svoy|profil|stranic)\w*)"
)
_REQUESTS = _rx(
    rf"""{_S}(?:{_VERBS}{_FILLER}[\s,]++{_TARGETS}|
    (?:vash|vasha|vashi|vashe|vashu|vashego|vashey|vashim|svoy|svoe|svoyu)\s+
      (?:nomer\w*\s+telefon\w*|nomer\w*\s+(?:mobiln|sotov|dlya\s+svyaz)\w*|
      adres\w*+(?!\s+(?:punkt|pvz|vydach|postamat|sklad|magazin|ofis)\w*)|fio|familiy\w*|pasport\w*|pochtu|email|
      e\s?mail|kontakt\w*|rekvizit\w*|dat\w*\s+rozhdeni\w*|lichn\w*\s+dan\w*|personaln\w*\s+dan\w*)|
    (?:nomer\w*|dan\w*|rekvizit\w*|cifr\w*)\s+(?:vashey\s+|svoey\s+|bankovsk\w*\s+)?kart\w*|cv|cvc\w*|
    pasportn\w*\s+dan\w*|(?:seri\w*\s+i\s+)?nomer\w*\s+pasport\w*|snils|
    kak\s+(?:s\s+vami|vam|vas)\s+(?:mozhno\s+)?(?:svyaza|pozvoni|napisa|dozvoni|nayti)\w*|
    kuda\s+vam\s+(?:mozhno\s+)?(?:napisat|pozvonit|otpravit|prislat|perevest)\w*|
    gde\s+vy\s+(?:zhivet|prozhiva)\w*|kak\s+vas\s+zovut\s+polnost\w*){_SE}"""
)

# Insults and rude words (folded view: Russian; skeleton: transliterated mat and English).
_INSULTS_FOLDED = _rx(
    rf"""{_B}(?:дура[кч]\w*|дур[аы]{_E}|дурн[ао]{_E}|идиот\w*|туп(?:ой|ая|ые|ого|ым|ых|ица|ицы|иц[аеу]|орыл\w*|ишь|ите){_E}|
    дебил\w*|кретин\w*|придур\w*|урод(?:ы|а|ов|у|ом|ина|ины|ец|цы)?{_E}|мраз\w*|сволоч\w*|скотин\w*|быдл\w*|лох(?:и|а|у|ом|ов|ушк\w*)?{_E}|
    чмо\w*|ничтожеств\w*|недоум\w*|дегенерат\w*|бомж\w*|нищеброд\w*|жлоб\w*|хам(?:ло|ка|ы|ьё|ье|ите|ят)?{_E}|
    истеричк\w*|неадекват\w*|больн(?:ой|ая|ые)\s+на\s+голову|с\s+ума\s+сош\w*|заткни(?:сь|те|тесь)?{_E}|отвали(?:те)?{_E}|отвяж\w*|отвян\w*|
    задолбал\w*|задрал\w*|достал[аи]?\s+уже|не\s+ваше\s+дело|сам[аи]?\s+виноват\w*|читать\s+не\s+умее\w*|
    разуйте\s+глаза|глаза\s+разуйте|(?:вы|ты)\s+(?:что\s*,?\s*|ч[её]\s*,?\s*)?(?:слеп|глух)\w*|
    (?:вы|ты)\s+(?:\w+\s+)?(?:мошенни\w*|аферист\w*|вымогател\w*|обманщи\w*|лжец\w*|лгун\w*|врун\w*|терр?орист\w*)|
    вр[её]те|вр[её]шь|
    халявщи\w*|попрошайк\w*|fuck\w*|shit(?:ty)?|bitch\w*|asshole\w*|stupid|moron\w*|dumb\w*|retard\w*|
    scammer\w*|liar\w*|shut\s+up|screw\s+you|loser\w*|jerk\w*|нахал\w*|наглец\w*|нагл(?:ая|ый|ые)\s+(?:ложь|покупател\w*|вы)|
    (?:на|по|от|за|ни)?ху[йяеё][а-я]*+{_E}|[а-я]*пизд\w*|
    (?:за|у|вы|до|от|на|при|раз|съ|под|про)?[её]б(?:а[лнтшк]|у[тч]?|[её]т|ись|л[аои]?|ищ|ло|ну)\w*|
    бля(?:д\w*|ть|ха)?{_E}|сук(?:а|и|у|ой|ам|ами){_E}|сучк\w*|муда[кч]\w*|мудил\w*|говн\w*|дерьм\w*|жоп\w*|
    залуп\w*|шлюх\w*|г[ао]ндон\w*|пид[оа]р\w*|пидр\w*|педик\w*|хер(?:ня|ни|ом|а|ов)?{_E}|херн\w*|срань\w*|
    дрян[ьи]{_E}|гад(?:ы|ина|ин|ость)?{_E}|козл(?:ы|ина|ом)?{_E}|козел{_E}|сдохн\w*|подавит\w*|убью\w*)"""
)
_INSULTS_SKELETON = _rx(
    rf"""{_S}(?:blya\w*|bly|suka|suki|sucka|pizd\w*|nahuy|nahui|nah|huy\w*|hui|ebat\w*|yoban\w*|eban\w*|
    mudak\w*|govno\w*|gavno|debil\w*|idiot\w*|durak\w*|dura|loh){_SE}"""
)

# Negative words about the marketplace or other sellers, in one sentence with a mention of them.
_MARKETPLACE = _rx(
    rf"""{_B}(?:wildberries|wildberis|вайлдберри\w*|вайлдбери\w*|вайлберри\w*|вайлбери\w*|валдбер\w*|валбер\w*|вилдбер\w*|
    вайлдбер\w*|вайлд(?:а|ы|у|е)?{_E}|вб|wb|маркетплейс\w*|marketplace\w*|площадк\w*|склад\w*\s+(?:вб|wb|маркетплейс\w*)|
    курьер\w*|пвз|пункт\w*\s+выдачи|сотрудник\w*\s+(?:вб|wb|пвз|склад\w*)|поддержк\w*\s+(?:вб|wb|маркетплейс\w*)|
    (?:други[ехм]|друг(?:ой|ого|им|ому)|остальн\w*|чуж\w*|прочи[ехм]|соседн\w*)\s+(?:продав\w*|магазин\w*|селлер\w*|бренд\w*)|
    конкурент\w*|перекуп\w*|селлер\w*|other\s+sellers?|competitors?){_E}"""
)
_NEGATIVE = _rx(
    rf"""{_B}(?:ужасн\w*|отвратительн\w*|омерзительн\w*|плох(?:о|ой|ая|ие|им|их|ому|ую)?{_E}|хуже|худш\w*|обма(?:н|ныва)\w*|
    мошенни\w*|вор(?:ы|ов|уют|ует|овств\w*|ишк\w*){_E}|крад[её]т|крадут|украл\w*|кидал\w*|кида(?:ют|ет){_E}|
    развод(?:ят|ит|илово|няк\w*)|криво\w*|косяч\w*|косяк\w*|бардак\w*|помойк\w*|свалк\w*|дерьм\w*|отстой\w*|
    виноват\w*|по\s+вине|бестолк\w*|безобраз\w*|позор\w*|халтур\w*|подделк\w*|подделыва\w*|фейк\w*|пал[её]нк\w*|
    пал[её]н(?:ый|ая|ое|ые|ку|ка){_E}|некачествен\w*|лаж[аиу]{_E}|кошмар\w*|туп(?:ые|ой|ая|ит|ят){_E}|
    дурацк\w*|ненавиж\w*|ненавид\w*|не\s+доверя\w*|не\s+покупайте|наплевательск\w*|безответствен\w*|врут|
    теря(?:ют|ет){_E}|путают|ничего\s+не\s+умеют|криворук\w*|
    бракодел\w*|шарашк\w*|жулик\w*|жульнича\w*|разгильдя\w*|хамств\w*|хамят|бездельник\w*|никч[её]мн\w*|
    ужас{_E}|дешевк\w*|барахл\w*|мусор{_E}|хлам\w*|граб[её]ж\w*|грабят|обдира\w*|наживают\w*|лохотрон\w*|
    ворье|некомпетентн\w*|непрофессиональн\w*|безграмотн\w*|глюч\w*|бесполезн\w*|
    terrible|awful|scam\w*|fraud\w*|cheat\w*|steal\w*|worst|fake\w*){_E}"""
)
_NEGATED_BEFORE = re.compile(r"(?:^|\s)(?:не|ни|нет|no|not|never)\s+(?:\w+\s+)?$")
_SENTENCE_END = re.compile(r"[.!?…;\n]+")


def _is_negated(view: _View, start: int, negators: re.Pattern[str]) -> bool:
    head = view.text[max(0, start - 40) : start]
    cut = max(head.rfind(c) for c in ".!?\n;")
    return negators.search(head[cut + 1 :]) is not None


_NEG_SKELETON = re.compile(rf"(?:^|\s){_NEG}\s+(?:\w+\s+){{0,2}}$")
_SUPPORT = re.compile(
    rf"(?:poderzhk\w*|goryach\w*\s+lini\w*|kol\s*-?\s*centr\w*|operator\w*)\s+(?:{_WB_SK})|(?:{_WB_SK})\s+poderzhk"
)
_CALL_OR_DIRECT = re.compile(r"napryam|zvon|pozvon|perezvon|nabir|naber|nabrat|sozvon|dozvon|obrat|obrash|svyaz")


def _sentences(view: _View) -> Iterable[tuple[int, int]]:
    start = 0
    for match in _SENTENCE_END.finditer(view.text):
        yield start, match.end()
        start = match.end()
    if start < len(view.text):
        yield start, len(view.text)


def _support_sentence(view: _View, start: int, end: int) -> bool:
    """A call or a direct line to the marketplace's support is advice, not luring the buyer away."""
    for s, e in _sentences(view):
        if s <= start < e:
            return _SUPPORT.search(view.text[s:e]) is not None
    return False


def _find(view: _View, rx: re.Pattern[str], reason: str) -> list[tuple[int, int, str]]:
    return [(*view.span(m.start(), m.end()), reason) for m in rx.finditer(view.text) if m.end() > m.start()]


_NEAR = 60  # characters between a mention of the marketplace (or other sellers) and a negative word


def _negative_marketplace(view: _View) -> list[tuple[int, int, str]]:
    found: set[tuple[int, int, str]] = set()
    for start, end in _sentences(view):
        sentence = view.text[start:end]
        mentions = [m.span() for m in _MARKETPLACE.finditer(sentence)]
        if not mentions:
            continue
        for match in _NEGATIVE.finditer(sentence):
            if _NEGATED_BEFORE.search(sentence[max(0, match.start() - 25) : match.start()]):
                continue
            close: list[tuple[int, int]] = []
            for m in mentions[bisect.bisect_left(mentions, (match.start() - _NEAR - 200, 0)) :]:
                if m[0] - _NEAR > match.start() or len(close) == 3:
                    break
                if match.start() <= m[1] + _NEAR:
                    close.append(m)
            if close:
                found.add((*view.span(start + match.start(), start + match.end()), "negative_marketplace"))
                found.update((*view.span(start + s, start + e), "negative_marketplace") for s, e in close)
    return sorted(found)


_WORD_TOKEN = re.compile(r"[^\W_]+")


def check(text: str) -> Verdict:
    """Whether `text` may be sent in a marketplace's buyer chat, with the reasons and spans."""
    if len(text) > MAX_CHARS:
        return Verdict(False, ("too_long",), ())
    folded, alternative = _folded(text)
    if not folded.text.strip():
        return Verdict(False, ("empty",), ())
    skeleton = _skeleton(folded)
    hits: list[tuple[int, int, str]] = []
    hits += [(s, e, "phone") for s, e in _phone_spans(folded)]
    for reason, rx in _FOLDED_RULES:
        hits += _find(folded, rx, reason)
    exempt = [folded.span(m.start(), m.end()) for m in _EXEMPT.finditer(folded.text)]
    names = [skeleton] if alternative is None else [skeleton, _skeleton(alternative)]
    for view in names:
        hits += [h for h in _find(view, _MESSENGERS, "messenger") if not any(s <= h[0] < e for s, e in exempt)]
        hits += _find(view, _PLATFORMS, "platform")
    for match in _OFFSITE.finditer(skeleton.text):
        if _is_negated(skeleton, match.start(), _NEG_SKELETON):
            continue
        if _CALL_OR_DIRECT.match(match.group(0)) and _support_sentence(skeleton, match.start(), match.end()):
            continue
        hits.append((*skeleton.span(match.start(), match.end()), "offsite"))
    for match in _REQUESTS.finditer(skeleton.text):
        if not _is_negated(skeleton, match.start(), _NEG_SKELETON):
            hits.append((*skeleton.span(match.start(), match.end()), "personal_data"))
    hits += _find(folded, _INSULTS_FOLDED, "insult")
    hits += _find(skeleton, _INSULTS_SKELETON, "insult")
    hits += _negative_marketplace(folded)
    if len(_WORD_TOKEN.findall(folded.text)) <= 1:
        hits.append((0, len(text), "one_word"))
    spans = _merge(text, hits)
    reasons = tuple(dict.fromkeys(s.reason for s in spans))
    return Verdict(not reasons, reasons, spans)


def _merge(text: str, hits: list[tuple[int, int, str]]) -> tuple[Span, ...]:
    """One span per (reason, range); a range inside a larger one of the same reason is dropped."""
    spans: list[Span] = []
    for start, end, reason in sorted(set(hits), key=lambda h: (h[2], h[0], -h[1])):
        start, end = max(0, start), min(len(text), max(end, start))
        while end > start and text[end - 1] in " \t\n.,;:!?)»\"'":
            end -= 1
        if spans and spans[-1].reason == reason and start < spans[-1].end:
            if end > spans[-1].end:
                spans[-1] = Span(spans[-1].start, end, reason, text[spans[-1].start : end])
            continue
        spans.append(Span(start, end, reason, text[start:end]))
    return tuple(sorted(spans, key=lambda s: (s.start, s.end, s.reason)))


# --- fallback, suggestion, masking ----------------------------------------------------------------------

_FALLBACK = {
    "ru": "Спасибо за сообщение! Мы уже разбираемся и ответим вам здесь, в этом чате.",
    "en": "Thank you for your message! We are looking into it and will answer you here, in this chat.",
    "es": "¡Gracias por su mensaje! Ya lo estamos revisando y le responderemos aquí, en este chat.",
}
_STAY = {
    "ru": "Давайте продолжим общение здесь, в этом чате.",
    "en": "Let us continue here, in this chat.",
    "es": "Sigamos aquí, en este chat.",
}
_NO_DATA = {
    "ru": "Данные заказа мы видим в чате, присылать дополнительно ничего не требуется.",
    "en": "We see the order details in the chat; nothing else needs to be sent.",
    "es": "Vemos los datos del pedido en el chat; no hace falta enviar nada más.",
}
_MORE = {
    "ru": "Если остались вопросы, напишите, пожалуйста, здесь — мы поможем.",
    "en": "If you have any other questions, please write here and we will help.",
    "es": "Si tiene más preguntas, escríbanos aquí y le ayudaremos.",
}
_CONTACT_REASONS = frozenset({"phone", "email", "link", "handle", "messenger", "platform", "offsite"})


def fallback(language: str = "ru") -> str:
    """The templated safe text sent instead of a bot, template or generated text the guard blocks."""
    return _FALLBACK.get(language[:2], _FALLBACK["ru"])


def suggest(text: str, verdict: Verdict | None = None, language: str = "ru") -> str:
    """A rewording that passes: sentences with contacts or invitations become one line about staying in
    the chat, requests for data one line saying nothing is needed, insults and negative words are dropped,
    a one-word answer gets a sentence more. Falls back to `fallback(language)`."""
    verdict = verdict or check(text)
    lang = language[:2] if language[:2] in _FALLBACK else "ru"
    if verdict.allowed:
        return text
    if "too_long" in verdict.reasons or "empty" in verdict.reasons:
        return fallback(lang)
    pieces: list[str] = []
    for start, end in _raw_sentences(text):
        inside = [s for s in verdict.spans if s.reason != "one_word" and s.start < end and s.end > start]
        reasons = {s.reason for s in inside}
        if not inside:
            piece = text[start:end].strip()
        elif reasons & _CONTACT_REASONS:
            piece = _STAY[lang]
        elif "personal_data" in reasons:
            piece = _NO_DATA[lang]
        else:
            piece = ""
        if piece and piece not in pieces:
            pieces.append(piece)
    if "one_word" in verdict.reasons or len(_WORD_TOKEN.findall(" ".join(pieces))) <= 1:
        pieces.append(_MORE[lang])
    rewording = " ".join(pieces).strip()
    return rewording if rewording and check(rewording).allowed else fallback(lang)


def _raw_sentences(text: str) -> Iterable[tuple[int, int]]:
    start = 0
    for match in re.finditer(r"[.!?…]+(?:\s+|$)|\n+", text):
        yield start, match.end()
        start = match.end()
    if start < len(text):
        yield start, len(text)


MASK = "••••"
_ADDRESS = re.compile(
    r"(?:(?<![а-яa-z])(?:ул\.?|улиц[аеуы]|пр-?т\.?|проспект\w*|пер\.|переул\w*|бульвар\w*|б-р|шоссе|ш\.|наб\.|"
    r"набережн\w*|мкр\.?|микрорайон\w*)\s*[^\n,.;]{2,40}?,?\s*(?:д\.|дом)\s*\d+[^\n,;]{0,6}"
    r"(?:,?\s*(?:кв\.?|квартир[аы]|к\.|корп\.?|стр\.?)\s*\d+\w*)*)",
    re.IGNORECASE,
)
_ADDRESS_CUE = re.compile(
    r"(?:мой\s+адрес|адрес\s+доставки|(?:я\s+)?(?:живу|проживаю)\s+(?:по\s+адресу|на)|адрес\s*:|address\s*:)\s*",
    re.IGNORECASE,
)
_NAME_CUE = re.compile(
    r"(?:меня\s+зовут|мо[её]\s+имя|фио|ф\.\s?и\.\s?о\.?|получатель|my\s+name\s+is)\s*[:\-—]?\s*", re.IGNORECASE
)
_CAPITALISED = re.compile(r"(?:[A-ZА-ЯЁ][a-zа-яё'-]+\.?\s*){1,3}")


def mask_personal(text: str) -> str:
    """The buyer's text as it may be stored on a marketplace channel: phone numbers, e-mail addresses,
    @handles, links, bank cards, a street address and a name after a cue ("меня зовут", "ФИО:") are
    replaced by `••••` (a card keeps its last four digits)."""
    if not text:
        return text
    if len(text) > MAX_CHARS * 4:
        text = text[: MAX_CHARS * 4]
    folded, _alternative = _folded(text)
    ranges: list[tuple[int, int]] = list(_phone_spans(folded))
    for rx in (_EMAIL_ADDRESS, _LINK, _HANDLE):
        ranges += [folded.span(m.start(), m.end()) for m in rx.finditer(folded.text)]
    ranges += [m.span() for m in _ADDRESS.finditer(text)]
    for cue in _ADDRESS_CUE.finditer(text):
        tail = re.match(r"[^\n.!?]{3,120}", text[cue.end() :])
        if tail:
            ranges.append((cue.end(), cue.end() + tail.end()))
    for cue in _NAME_CUE.finditer(text):
        name = _CAPITALISED.match(text, cue.end())
        if name:
            ranges.append((cue.end(), name.end()))
    out, cursor = [], 0
    for start, end in sorted(ranges):
        if end <= cursor:
            continue
        start = max(start, cursor)
        while end > start and text[end - 1] in " \t\n.,;:!?)":
            end -= 1
        out += [text[cursor:start], MASK]
        cursor = end
    out.append(text[cursor:])
    return mask_cards("".join(out))
