"""A pack's runtime settings: entry flow, deep links, global commands, system texts."""

from __future__ import annotations

from dataclasses import dataclass, field

from otklik.core.flows.model import Text

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "handoff": {
        "ru": "Передаю ваш вопрос оператору. Он ответит здесь же, как только освободится.",
        "en": "I am passing your question to an operator who will answer here shortly.",
        "es": "Paso tu consulta a un asesor; te responderá por aquí en breve.",
    },
    "handoff_priority": {
        "ru": "Это важно — срочно зову оператора. Если вам плохо, пожалуйста, обратитесь к врачу.",
        "en": "This is important — calling an operator now. If you feel unwell, please see a doctor.",
        "es": "Es importante: llamo a un asesor ahora mismo. Si te sentís mal, consultá a un médico.",
    },
    "unsubscribed": {
        "ru": "Вы отписались от рассылок. Чтобы снова получать новости, напишите «старт».",
        "en": "You have unsubscribed from broadcasts. Write “start” to subscribe again.",
        "es": "Cancelaste la suscripción a las difusiones. Escribí «alta» para volver a recibirlas.",
    },
    "not_understood": {
        "ru": "Не совсем понял ответ.",
        "en": "I did not quite get that.",
        "es": "No entendí bien la respuesta.",
    },
    "with_operator": {
        "ru": "Ваше сообщение получено, оператор скоро ответит.",
        "en": "Your message has been received; an operator will answer soon.",
        "es": "Recibimos tu mensaje; un asesor te responderá pronto.",
    },
    "action_failed": {
        "ru": "Не получилось выполнить запрос, попробуйте позже.",
        "en": "That did not work, please try again later.",
        "es": "No pudimos completar la solicitud, probá más tarde.",
    },
}


@dataclass(frozen=True, slots=True)
class PackConfig:
    """Settings of one pack (e.g. `care-ru`). Command words are matched on the whole message."""

    id: str
    language: str
    default_flow: str
    region: str = "RU"  # default region for phone numbers
    deep_links: dict[str, str] = field(default_factory=dict)  # /start payload prefix -> flow id
    operator_words: tuple[str, ...] = ("/operator", "оператор", "operator", "operador", "humano", "человек")
    stop_words: tuple[str, ...] = ("/stop", "стоп", "stop", "отписаться", "baja")
    resubscribe_words: tuple[str, ...] = ("старт", "подписаться", "subscribe", "alta")
    threshold: float = 0.5
    operator_intent: str = "operator_request"
    operator_confidence: float = 0.8
    texts: dict[str, Text] = field(default_factory=dict)

    def text(self, key: str) -> Text:
        return self.texts.get(key) or DEFAULT_TEXTS.get(key) or ""

    def flow_for_payload(self, payload: str) -> str | None:
        """The flow a deep-link payload opens: the longest matching prefix wins."""
        best = max((p for p in self.deep_links if payload == p or payload.startswith(p + "_")), key=len, default=None)
        return self.deep_links[best] if best is not None else None
