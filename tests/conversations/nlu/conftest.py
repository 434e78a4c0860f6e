"""Fixtures of the NLU tests: each pack's classifier is trained once per session (about 2 s)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from otklik.conversations.nlu.classifier import OfflineClassifier, load_classifier
from otklik.conversations.nlu.packdata import pack_dir

DATA = Path(__file__).parent / "data"
# A Wednesday, noon: relative dates in the tests are computed from here.
NOW = datetime(2024, 5, 8, 12, 0)


@pytest.fixture(scope="session")
def care() -> OfflineClassifier:
    return load_classifier(pack_dir("care-ru"))


@pytest.fixture(scope="session")
def sales() -> OfflineClassifier:
    return load_classifier(pack_dir("sales-es"))
