"""Held-out accuracy of the shipped packs. The held-out files were written before the training examples
and are never used for training; this test fails when a pack regresses below the target."""

from __future__ import annotations

import pytest

from otklik.conversations.nlu.classifier import OfflineClassifier
from otklik.conversations.nlu.evaluate import evaluate, format_report, read_labelled_csv
from otklik.conversations.nlu.packdata import load_pack, pack_dir
from otklik.conversations.nlu.text import normalize
from tests.conversations.nlu.conftest import DATA

TARGET = 0.95
HELDOUT = {"care-ru": DATA / "heldout_care_ru.csv", "sales-es": DATA / "heldout_sales_es.csv"}


@pytest.mark.parametrize("pack", ["care-ru", "sales-es"])
def test_heldout_is_disjoint_from_training(pack: str) -> None:
    training = {normalize(t) for examples in load_pack(pack_dir(pack)).examples.values() for t in examples}
    rows = read_labelled_csv(HELDOUT[pack])
    overlap = [text for text, _ in rows if normalize(text) in training]
    assert overlap == []


def test_heldout_sizes() -> None:
    assert len(read_labelled_csv(HELDOUT["care-ru"])) >= 150
    assert len(read_labelled_csv(HELDOUT["sales-es"])) >= 100


@pytest.mark.parametrize("pack", ["care-ru", "sales-es"])
def test_heldout_accuracy(pack: str, care: OfflineClassifier, sales: OfflineClassifier) -> None:
    classifier = care if pack == "care-ru" else sales
    rows = read_labelled_csv(HELDOUT[pack], classifier.intents)
    report = evaluate(classifier, rows)
    assert report.accuracy >= TARGET, format_report(report)
    assert {s.intent for s in report.per_intent} >= set(classifier.intents)
