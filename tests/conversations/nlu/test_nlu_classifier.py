from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from otklik.conversations.nlu.classifier import OfflineClassifier, cache_path, load_classifier, train_from_examples
from otklik.conversations.nlu.packdata import load_pack, pack_dir
from otklik.core.understanding import IntentClassifier, Understanding
from tests.conversations.nlu.conftest import NOW


def test_implements_the_engine_protocol(care: OfflineClassifier) -> None:
    classifier: IntentClassifier = care
    result = classifier.understand("где мой кэшбэк за отзыв?", "ru")
    assert isinstance(result, Understanding)
    assert result.intent == "cashback_request"
    assert 0.0 <= result.confidence <= 1.0
    assert len(result.alternatives) == 3
    assert all(p <= result.confidence for _, p in result.alternatives)
    assert result.red_flag is None


def test_threshold_comes_from_the_pack(care: OfflineClassifier, sales: OfflineClassifier) -> None:
    assert care.threshold == load_pack(pack_dir("care-ru")).threshold
    assert sales.threshold == load_pack(pack_dir("sales-es")).threshold


def test_low_confidence_still_returns_the_best_intent(care: OfflineClassifier) -> None:
    result = care.understand("ммм ну такое")
    assert result.intent in care.intents
    assert result.confidence > 0.0


def test_empty_text_is_other_with_zero_confidence(care: OfflineClassifier) -> None:
    result = care.understand("   ")
    assert (result.intent, result.confidence) == ("other", 0.0)
    assert care.understand("?!…").confidence == 0.0
    assert care.understand("🙏🙏").intent == "gratitude"


def test_entities_are_attached(care: OfflineClassifier, sales: OfflineClassifier) -> None:
    result = care.understand("пришёл не тот товар, штрихкод 4006381333931", now=NOW)
    assert result.entity("barcode") is not None
    assert result.entity("barcode").value == "4006381333931"  # type: ignore[union-attr]
    phone = sales.understand("llamame al 011 15 1234-5678").entity("phone")
    assert phone is not None and phone.value == "+5491112345678"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("добрый день, у меня флакон треснул и всё вытекло, как вернуть?", "defective_item"),
        ("здравствуйте, мне пришла не та расцветка, хочу вернуть", "wrong_item"),
        ("после геля всё горит и покраснело, верните деньги", "side_effect"),
        ("здравствуйте", "greeting"),
    ],
)
def test_the_problem_wins_over_a_greeting_or_a_return(care: OfflineClassifier, text: str, intent: str) -> None:
    assert care.understand(text).intent == intent


def test_train_from_examples() -> None:
    classifier = train_from_examples(
        {
            "hello": ["привет", "здравствуйте", "добрый день"],
            "bye": ["пока", "до свидания", "всего доброго"],
        },
        language="ru",
        threshold=0.6,
        red_flags=["суд"],
    )
    assert classifier.threshold == 0.6
    assert classifier.understand("приветик").intent == "hello"
    assert classifier.understand("подам в суд, пока").red_flag == "суд"
    assert classifier.example_counts == {"hello": 3, "bye": 3}


def test_train_needs_two_intents() -> None:
    with pytest.raises(ValueError, match="two intents"):
        train_from_examples({"only": ["a", "b"]})


def _copy_pack(tmp_path: Path) -> Path:
    target = tmp_path / "sales-es"
    target.mkdir()
    shutil.copy(pack_dir("sales-es") / "intents.yaml", target / "intents.yaml")
    return target


def test_cache_is_reused_and_invalidated_when_the_intents_change(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    cache = tmp_path / "cache"
    first = load_classifier(pack, cache)
    [cached_file] = list(cache.glob("*.joblib"))
    again = load_classifier(pack, cache)
    assert again.train_seconds == first.train_seconds  # loaded, not retrained
    assert again.understand("hola").intent == first.understand("hola").intent

    text = (pack / "intents.yaml").read_text(encoding="utf-8")
    (pack / "intents.yaml").write_text(text.replace("threshold: 0.45", "threshold: 0.61"), encoding="utf-8")
    changed = load_classifier(pack, cache)
    assert changed.threshold == 0.61
    assert not cached_file.exists()  # the stale model was replaced
    assert len(list(cache.glob("*.joblib"))) == 1
    assert cache_path(pack, cache, load_pack(pack)).exists()


def test_force_retrains(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    first = load_classifier(pack, tmp_path / "cache")
    forced = load_classifier(pack, tmp_path / "cache", force=True)
    assert forced is not first


def test_a_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    cache_path(pack, cache, load_pack(pack)).write_bytes(b"not a pickle")
    classifier = load_classifier(pack, cache)
    assert classifier.understand("quiero hablar con un vendedor").intent == "operator_request"


def test_cache_cleanup_keeps_other_packs_with_a_similar_name(tmp_path: Path) -> None:
    pack = _copy_pack(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    neighbour = cache / ("sales-es-extra-" + "0" * 24 + ".joblib")
    neighbour.write_bytes(b"another pack")
    old = cache / ("sales-es-" + "f" * 24 + ".joblib")
    old.write_bytes(b"an older model of this pack")
    load_classifier(pack, cache)
    assert neighbour.exists()
    assert not old.exists()
    assert not list(cache.glob("*.tmp"))
