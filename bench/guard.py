"""The marketplace guard's cost per text (`otklik.core.guard.check`); prints one JSON object.

    PYTHONPATH=. .venv/bin/python bench/guard.py [--rounds 5]

- `corpus`: the texts of tests/data/guard_corpus.jsonl (short chat messages), median ms per text;
- `reply_1000`: a 1000-character seller reply (the size WB's chat takes in one message);
- `hostile_max`: the slowest of hostile texts at the size limit (`MAX_CHARS`), long runs meant to make
  patterns backtrack; it is what a worst-case message costs the step that checks it.
Nothing asserts these timings (see bench/README.md)."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from otklik.core.guard import MAX_CHARS, check

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "guard_corpus.jsonl"
REPLY = (
    "Здравствуйте! Спасибо, что написали и прислали фото. Нам очень жаль, что застёжка сломалась так быстро. "
    "Оформите, пожалуйста, возврат в личном кабинете Wildberries: раздел «Покупки», товар, «Вернуть». "
    "Укажите причину «брак» и приложите фото, которые вы прислали сюда. Мы рассмотрим заявку в течение двух дней "
    "и одобрим её. Деньги вернутся на карту, с которой вы оплачивали заказ. Если понадобится, напишите здесь, "
    "в этом чате, — ответим в рабочее время с 9:00 до 18:00. "
)
HOSTILE = {
    "letters": "a" * MAX_CHARS,
    "dots": "a." * (MAX_CHARS // 2),
    "dashes": "1-" * (MAX_CHARS // 2),
    "www": "www." * (MAX_CHARS // 4),
    "requests": "напишите ваш " * (MAX_CHARS // 13),
    "negative": "вб ужасно " * (MAX_CHARS // 10),
    "digits": "8 " * (MAX_CHARS // 2),
    "zero_width": "т\u200b" * (MAX_CHARS // 2),
}


def _ms(text: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        check(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    corpus = [_ms(t, args.rounds) for t in texts]
    reply = (REPLY * 3)[:1000]
    hostile = {name: round(_ms(text, max(1, args.rounds // 2)), 1) for name, text in HOSTILE.items()}
    print(
        json.dumps(
            {
                "corpus_texts": len(texts),
                "corpus_median_ms": round(statistics.median(corpus), 3),
                "corpus_p95_ms": round(sorted(corpus)[int(len(corpus) * 0.95) - 1], 3),
                "reply_1000_ms": round(_ms(reply, args.rounds), 2),
                "hostile_max_chars": MAX_CHARS,
                "hostile_ms": hostile,
                "hostile_worst_ms": max(hostile.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
