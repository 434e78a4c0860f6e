"""What never goes to an external LLM: texts that hold personal numbers (phone, card, account) or e-mails.

Buyers type payout details (a card number, an SBP phone) and contacts into the chat. The offline reading
handles such a message; the LLM is simply not asked. The check is deliberately broad: any run of 7 or more
digits (spaces, dashes, dots and brackets between them allowed) or an e-mail address. The same
heuristic (`otklik.core.redact`) masks card numbers before a buyer's text is stored.
"""

from __future__ import annotations

from otklik.core.redact import DIGIT_RUN, EMAIL


def holds_personal_numbers(text: str) -> bool:
    return bool(DIGIT_RUN.search(text) or EMAIL.search(text))
