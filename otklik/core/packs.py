"""A pack's runtime settings: entry flow, deep links, global commands, system texts."""

from __future__ import annotations

from dataclasses import dataclass, field

from otklik.core.flows.model import Text

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "not_on_marketplace": {
        "ru": "В этом чате маркетплейса я помогаю с заказом и товаром: пришёл не тот товар, брак, доставка, "
        "вопросы о товаре. Напишите, что случилось.",
        "en": "In this marketplace chat I help with your order and the product: a wrong item, a defect, "
        "delivery, questions about the product. Tell me what happened.",
        "es": "En este chat del marketplace ayudo con tu pedido y el producto: un artículo equivocado, un "
        "defecto, la entrega, preguntas sobre el producto. Contame qué pasó.",
    },
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
    # conversation repair (docs/flows.md#conversation-repair); a pack overrides any of them in `texts:`
    "resume": {
        "ru": "Вернёмся к предыдущему вопросу?",
        "en": "Shall we go back to the previous question?",
        "es": "¿Volvemos a lo que estábamos viendo?",
    },
    "resume_yes": {"ru": "Да, вернёмся", "en": "Yes, go back", "es": "Sí, volvamos"},
    "resume_no": {"ru": "Нет, не нужно", "en": "No, thanks", "es": "No, gracias"},
    "resume_dropped": {
        "ru": "Хорошо. Если понадобится что-то ещё — просто напишите.",
        "en": "All right. If you need anything else, just write.",
        "es": "Perfecto. Si necesitás algo más, escribime.",
    },
    "cancelled": {
        "ru": "Хорошо, отменил. Если понадобится что-то ещё — просто напишите.",
        "en": "All right, cancelled. If you need anything else, just write.",
        "es": "Listo, lo cancelé. Si necesitás algo más, escribime.",
    },
    "skipped": {
        "ru": "Хорошо, обойдёмся без этого.",
        "en": "All right, we will do without it.",
        "es": "Está bien, seguimos sin eso.",
    },
    "reask_hint": {
        "ru": "Ответьте, пожалуйста, одним сообщением.",
        "en": "Please answer in one message.",
        "es": "Respondé, por favor, en un solo mensaje.",
    },
    "reask_hint_photo": {
        "ru": "Чтобы отправить фото, нажмите на скрепку 📎 рядом с полем ввода и выберите снимок.",
        "en": "To send a photo, tap the paperclip 📎 next to the text field and choose a picture.",
        "es": "Para enviar una foto, tocá el clip 📎 junto al campo de texto y elegí la imagen.",
    },
    "reask_hint_file": {
        "ru": "Прикрепите файл через скрепку 📎 рядом с полем ввода.",
        "en": "Attach the file with the paperclip 📎 next to the text field.",
        "es": "Adjuntá el archivo con el clip 📎 junto al campo de texto.",
    },
    "reask_hint_number": {
        "ru": "Нужно только число, без букв — например, 12345.",
        "en": "Just the number, without letters — for example, 12345.",
        "es": "Solo el número, sin letras; por ejemplo, 12345.",
    },
    "reask_hint_choice": {
        "ru": "Можно нажать кнопку или написать номер варианта.",
        "en": "Tap a button or write the option's number.",
        "es": "Podés tocar un botón o escribir el número de la opción.",
    },
    "reask_hint_phone": {
        "ru": "Напишите номер телефона цифрами, например +7 916 123-45-67.",
        "en": "Write the phone number in digits, e.g. +44 20 7946 0958.",
        "es": "Escribí el teléfono en números, por ejemplo 11 5555-1234.",
    },
    "reask_hint_date": {
        "ru": "Напишите дату, например 31.12 или «завтра».",
        "en": "Write a date, e.g. 31.12 or “tomorrow”.",
        "es": "Escribí una fecha, por ejemplo 31/12 o «mañana».",
    },
    "reask_hint_email": {
        "ru": "Напишите адрес почты целиком, например name@mail.ru.",
        "en": "Write the whole e-mail address, e.g. name@example.com.",
        "es": "Escribí el correo completo, por ejemplo nombre@gmail.com.",
    },
    "reask_last": {
        "ru": "Кажется, не получается. Можно попробовать ещё раз или позвать менеджера.",
        "en": "It does not seem to work. You can try once more or ask for a person.",
        "es": "Parece que no funciona. Podés intentar de nuevo o hablar con una persona.",
    },
    "button_operator": {"ru": "Позвать менеджера", "en": "Ask for a person", "es": "Hablar con una persona"},
    "button_skip": {"ru": "Не могу / пропустить", "en": "I can't / skip", "es": "No puedo / saltar"},
}

#: Whole-message words that cancel the current flow (compared folded: lower case, no accents or marks).
CANCEL_WORDS = (
    "отмена", "отменить", "отмени", "отменяю", "не надо", "не нужно", "уже не надо", "уже не нужно",
    "передумал", "передумала", "я передумал", "я передумала", "забудь", "забудьте", "хватит", "неважно",
    "cancel", "never mind", "forget it",
    "cancelar", "cancela", "cancelá", "cancelo", "olvidalo", "olvídalo", "olvidate", "dejalo", "déjalo",
    "ya no", "no importa", "me arrepentí", "cambié de idea",
)  # fmt: skip
#: Phrases (anywhere in the message) that say "I cannot give what you ask": the node's `on_skip`.
SKIP_PHRASES = (
    "у меня нет", "нет штрихкода", "нет штрих кода", "нет этикетки", "нет фото", "нет чека", "нету",
    "не могу", "не смогу", "не получается", "не получится", "не знаю", "без фото", "выбросил*", "выкинул*",
    "не сохранил*", "пропустить", "пропусти", "потерял*",
    "i don't have", "i can't", "skip",
    "no tengo", "no puedo", "no sé", "no se donde", "sin foto", "lo tiré", "saltar", "omitir", "perdí",
)  # fmt: skip
YES_WORDS = (
    "да", "ага", "угу", "конечно", "давайте", "давай", "да давайте", "хорошо", "ок", "окей", "ok", "верно",
    "yes", "sure", "si", "sí", "dale", "claro", "bueno", "de una",
)  # fmt: skip
NO_WORDS = (
    "нет", "не", "неа", "нет спасибо", "не надо", "не нужно", "no", "no thanks", "no gracias", "nop",
)  # fmt: skip


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
    # the languages the pack answers in; a buyer's own language is used only when it is one of them
    languages: tuple[str, ...] = ()
    # conversation repair (docs/flows.md#conversation-repair)
    cancel_words: tuple[str, ...] = CANCEL_WORDS
    skip_phrases: tuple[str, ...] = SKIP_PHRASES
    yes_words: tuple[str, ...] = YES_WORDS
    no_words: tuple[str, ...] = NO_WORDS
    interrupt_confidence: float = 0.75  # a message is another intent only this sure...
    interrupt_margin: float = 0.3  # ...and this far ahead of the runner-up
    stack_depth: int = 3  # interrupted flows kept for "shall we go back?"
    stack_timeout: float = 24 * 3600.0  # seconds; an older interrupted flow is dropped quietly

    def speaks(self, language: str | None) -> str:
        """The language to answer in: the buyer's when the pack speaks it, else the pack's."""
        if language and (language == self.language or language in self.languages):
            return language
        return self.language

    def text(self, key: str) -> Text:
        return self.texts.get(key) or DEFAULT_TEXTS.get(key) or ""

    def flow_for_payload(self, payload: str) -> str | None:
        """The flow a deep-link payload opens: the longest matching prefix wins."""
        best = max((p for p in self.deep_links if payload == p or payload.startswith(p + "_")), key=len, default=None)
        return self.deep_links[best] if best is not None else None
