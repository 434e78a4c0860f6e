"""Content terms of a text: lemmas (ru) or stems (es) from `otklik.conversations.nlu.text`, without stop words.

Shared by retrieval (what a question is about) and the LLM guardrails (what a reply claims).
"""

from __future__ import annotations

from otklik.conversations.nlu.text import lemmas, strip_accents, tokens

__all__ = ["content_terms", "is_spanish"]

# Compared with the lemma (ru) or the accent-less token (es, en). Greetings and politeness words are
# included: they carry no topic.


def _words(text: str) -> list[str]:
    return text.split()


_RU_STOP = frozenset(
    _words("""
    и в во не что он на я с со как а то весь она так его но да ты к у же вы за бы по только ее мне вот от
    меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть него до вас нибудь опять уж
    вам ведь там потом себя ничего ей мочь они тут где есть надо ней для мы тебя их чем сам чтоб без будто
    чего раз тоже себе под ж тогда кто этот тот потому какой совсем ним здесь один почти мой тем чтобы нее
    сейчас куда зачем никогда можно при наконец об другой хоть после над больше через про всего них много
    разве впрочем свой перед иногда чуть нельзя такой им более всегда конечно между это наш ваш который
    либо ко ой ах эх ага угу ок окей все делать нужно очень просто вообще правда сколько почему
    ужасно ужасный нормально нормальный сильно плохо хорошо страшно кошмар срочно помогите
    здравствовать здравствуйте привет добрый пожалуйста спасибо благодарить подсказать сказать скажите
    вопрос помочь помогать хотеть хотеться подскажите
    """)
)
_ES_STOP = frozenset(
    strip_accents(w)
    for w in _words("""
    el la los las un una unos unas lo le les al del de a en y o u e ni que qué con por para sin sobre entre
    hasta desde es son ser estar esta este esto estos estas ese esa eso mi mis tu tus su sus nuestro nuestra
    me te se nos os yo vos usted ustedes ellos ellas él ella ya muy mas más pero si sí no como cómo cuando
    donde dónde quien cual cuál hay ha he han fue era tiene tengo tenes tenés puedo puede pueden podes
    podés quiero quisiera necesito también tambien solo sólo algo todo toda todos todas otro otra cada
    hola buenas buenos dias días tardes noches gracias porfa favor consulta consultar saber quería queria
    hacer hago hace hacen haces hacemos tienen tenemos venden vendes vos andas cuanto cuanta cuantos
    cuantas porque bien mal malo buen bueno urgente sos soy estas esta estoy
    """)
)
_EN_STOP = frozenset(
    _words("""
    the a an and or but if of to in on at by for with from about as is are was were be been being it its
    this that these those i you he she we they me my your our their us them do does did have has had can
    could would should will shall may might not no yes so than then there here what which who how when
    where why please thanks thank hello hi
    """)
)


def is_spanish(language: str) -> bool:
    return language.lower().startswith("es")


def content_terms(text: str, language: str = "ru") -> list[str]:
    """Lemmas/stems of the words that carry meaning, in order (duplicates kept).

    Stop words are checked on the lemma (ru) and on the accent-less word (es, en); one-letter words
    are dropped, numbers are kept.
    """
    words = tokens(text)
    forms = lemmas(text, language)
    spanish = is_spanish(language)
    result: list[str] = []
    for word, form in zip(words, forms, strict=True):
        plain = strip_accents(word)
        if len(plain) < 2 and not plain.isdigit():
            continue
        if plain in _EN_STOP or (plain in _ES_STOP if spanish else form in _RU_STOP):
            continue
        result.append(form)
    return result
