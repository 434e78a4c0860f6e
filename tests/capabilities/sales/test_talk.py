"""`talk.read`: what a buyer's sales message asks for, before any catalog lookup."""

from __future__ import annotations

import pytest

from otklik.capabilities.sales.talk import read


@pytest.mark.parametrize(
    "text",
    [
        "¿qué diferencia hay entre un NVR y un DVR?",
        "¿Para qué sirve el PoE en una cámara?",
        "qué es un XVR",
        "¿Cómo se instala una cámara domo?",
        "¿me conviene una bala o una domo para afuera?",
    ],
)
def test_how_things_work_or_differ_is_for_the_articles_not_an_order(text: str) -> None:
    assert read(text).kind == "explain"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("quiero 2 de la DS-2CD1043 y un disco de 1 TB", "add"),
        ("quiero la que conviene, 2 de la DS-2CD1043", "add"),  # a buying verb wins
        ("¿cuánto sale la DS-2CD1143?", "ask"),
        ("ver carrito", "cart"),
    ],
)
def test_orders_and_product_questions_are_still_read_as_before(text: str, kind: str) -> None:
    assert read(text).kind == kind
