from __future__ import annotations

import pytest

from otklik.conversations.nlu.packdata import DEFAULT_THRESHOLD, PackError, load_pack, pack_dir, parse_pack

CARE_INTENTS = [
    "cashback_request", "wrong_item", "defective_item", "side_effect", "return_refund", "delivery_issue",
    "product_question", "operator_request", "gratitude", "greeting", "other",
]  # fmt: skip
SALES_INTENTS = [
    "product_search", "price_stock", "financing", "purchase", "operator_request", "order_status", "cart", "greeting",
    "other",
]  # fmt: skip


def test_shipped_packs_have_the_fixed_intents_and_enough_examples() -> None:
    care = load_pack(pack_dir("care-ru"))
    sales = load_pack(pack_dir("sales-es"))
    assert care.intents == CARE_INTENTS and sales.intents == SALES_INTENTS
    assert (care.language, care.default_region, sales.language, sales.default_region) == ("ru", "RU", "es", "AR")
    assert all(len(v) >= 60 for v in care.examples.values())
    assert all(len(v) >= 50 for v in sales.examples.values())
    assert 0 < care.threshold < 1 and 0 < sales.threshold < 1
    assert "ожог" in care.red_flags and "quemadura" in sales.red_flags


def test_no_duplicate_examples_across_intents() -> None:
    for name in ("care-ru", "sales-es"):
        pack = load_pack(pack_dir(name))
        seen: dict[str, str] = {}
        for intent, examples in pack.examples.items():
            for text in examples:
                assert seen.setdefault(text.lower(), intent) == intent, (name, text)


def test_minimal_pack_defaults() -> None:
    pack = parse_pack("intents:\n  a: [x, y]\n  b:\n    examples: [z]\n")
    assert pack.threshold == DEFAULT_THRESHOLD
    assert pack.examples == {"a": ["x", "y"], "b": ["z"]}
    assert pack.red_flags == () and pack.concepts == {}
    assert len(pack.digest) == 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("intents: [", "invalid YAML"),
        ("- a\n- b\n", "mapping"),
        ("language: ru\n", "'intents'"),
        ("intents:\n  a: {examples: []}\n", "no examples"),
        ("intents:\n  a: {examples: [x]}\nthreshold: 2\n", "threshold"),
        ("intents:\n  a: {examples: [x]}\nred_flags: ожог\n", "red_flags"),
        ("intents:\n  a: {examples: [x]}\nconcepts: [a]\n", "concepts"),
        ("intents:\n  a: 5\n", "mapping with 'examples'"),
    ],
)
def test_malformed_packs(text: str, message: str) -> None:
    with pytest.raises(PackError, match=message):
        parse_pack(text)


def test_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PackError, match="no intents.yaml"):
        load_pack(tmp_path)
