"""What never goes to an external LLM: texts that hold personal numbers (phone, card, account) or e-mails.

Buyers type payout details (a card number, an SBP phone) and contacts into the chat. The offline reading
handles such a message; the LLM is simply not asked. The check is deliberately broad: any run of 7 or more
digits (spaces, dashes, dots and brackets between them allowed) or an e-mail address.
"""

from __future__ import annotations

import re

_DIGIT_RUN = re.compile(r"(?:\d[\s\-.()]{0,2}){7,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def holds_personal_numbers(text: str) -> bool:
    return bool(_DIGIT_RUN.search(text) or _EMAIL.search(text))
