"""The product stores admin passwords as argon2id at the library's recommended cost; the tests' cheaper
hasher (tests/conftest.py) is swapped in per test and never reaches the product."""

from __future__ import annotations

from argon2 import extract_parameters, profiles

from otklik.platform import users
from tests.conftest import FAST_HASHER


def test_the_product_hashes_with_argon2id_at_the_recommended_cost() -> None:
    # `_DUMMY_HASH` is made by the module's own hasher when it is imported, before any test swaps it
    params = extract_parameters(users._DUMMY_HASH)
    expected = profiles.RFC_9106_LOW_MEMORY
    assert params.type.name == "ID"
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        expected.time_cost,
        expected.memory_cost,
        expected.parallelism,
    )
    assert users._hasher is FAST_HASHER  # in the tests only
