"""Loading knowledge articles: clear errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from otklik.conversations.knowledge import Article, ArticleError, load_articles, pack_articles_dir, parse_article
from otklik.core.errors import InvalidInput

GOOD = """---
id: sample
title: Пример
tags: [один, два]
language: ru
products: [123456789, Warming-Gel]
approved: true
kind: howto
---
Фон для оператора.

## Ответ
Текст для покупателя.

## Для оператора
Не отправлять.
"""


def test_parses_all_fields() -> None:
    article = parse_article(GOOD, "sample.md")
    assert article.id == "sample"
    assert article.title == "Пример"
    assert article.tags == ("один", "два")
    assert article.products == ("123456789", "warming-gel")  # numbers become text, keys lower-case
    assert article.approved is True
    assert article.kind == "howto"
    assert article.answer_text == "Текст для покупателя."
    assert article.scoped_to(123456789) and article.scoped_to("WARMING-GEL") and not article.scoped_to(1)


def test_whole_body_is_the_answer_without_an_answer_section() -> None:
    article = parse_article("---\nid: a\ntitle: T\nlanguage: es\n---\nTodo el texto.\n", "a.md")
    assert article.answer_text == "Todo el texto."
    assert article.approved is False and article.tags == () and article.kind is None


def test_spanish_answer_section() -> None:
    text = "---\nid: a\ntitle: T\nlanguage: es\n---\nNotas.\n\n## Respuesta\nHola.\n"
    assert parse_article(text, "a.md").answer_text == "Hola."


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("no front matter at all", None, "no YAML front matter"),
        ("---\nid: a\ntitle: T\nlanguage: ru\nbody text without the closing line\n", None, "no YAML front matter"),
        ("---\nid: [a\ntitle: T\n---\nbody\n", None, "not valid YAML"),
        ("---\n- a\n- b\n---\nbody\n", None, "must be a mapping"),
        ("---\ntitle: T\nlanguage: ru\n---\nbody\n", "id", "missing"),
        ("---\nid: ''\ntitle: T\nlanguage: ru\n---\nbody\n", "id", "missing"),
        ("---\nid: a\nlanguage: ru\n---\nbody\n", "title", "missing"),
        ("---\nid: a\ntitle: T\nlanguage: ru\n---\n   \n", "body", "no text"),
        ("---\nid: Bad Id\ntitle: T\nlanguage: ru\n---\nbody\n", "id", "not valid"),
        ("---\nid: a\ntitle: T\nlanguage: russian\n---\nbody\n", "language", "two-letter"),
        ("---\nid: a\ntitle: T\nlanguage: ru\napproved: yes please\n---\nbody\n", "approved", "true or false"),
        ("---\nid: a\ntitle: T\nlanguage: ru\naproved: true\n---\nbody\n", "aproved", "unknown field"),
        ("---\nid: a\ntitle: T\nlanguage: ru\ntags: {a: 1}\n---\nbody\n", "tags", "must be a list"),
        ("---\nid: a\ntitle: T\nlanguage: ru\nproducts: [1, '']\n---\nbody\n", "products", "non-empty"),
        ("---\nid: a\ntitle: T\nlanguage: ru\nkind: Side Effect\n---\nbody\n", "kind", "not valid"),
    ],
)
def test_malformed_articles_are_refused_with_file_and_field(text: str, field: str | None, fragment: str) -> None:
    with pytest.raises(ArticleError) as caught:
        parse_article(text, "packs/x/articles/broken.md")
    error = caught.value
    assert error.source == "packs/x/articles/broken.md"
    assert error.field == field
    message = str(error)
    assert message.startswith("packs/x/articles/broken.md")
    assert fragment in message
    if field:
        assert f"field '{field}'" in message
    assert isinstance(error, InvalidInput)  # one exception tree: the admin maps it to 422


def test_directory_loader_reports_the_broken_file(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nid: a\ntitle: A\nlanguage: ru\n---\nтекст\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("---\ntitle: B\nlanguage: ru\n---\nтекст\n", encoding="utf-8")
    with pytest.raises(ArticleError, match=r"b\.md: field 'id': missing"):
        load_articles(tmp_path)


def test_duplicate_ids_in_a_directory(tmp_path: Path) -> None:
    for name in ("one.md", "two.md"):
        (tmp_path / name).write_text("---\nid: same\ntitle: A\nlanguage: ru\n---\nтекст\n", encoding="utf-8")
    with pytest.raises(ArticleError, match="duplicate id 'same'"):
        load_articles(tmp_path)


def test_unapproved_side_effect_article_is_not_usable() -> None:
    base = "---\nid: a\ntitle: T\nlanguage: ru\nkind: side_effect\n{extra}---\nтекст\n"
    assert not parse_article(base.format(extra=""), "a.md").usable
    assert parse_article(base.format(extra="approved: true\n"), "a.md").usable
    assert Article(id="b", title="T", body="x", language="ru", kind="howto").usable


@pytest.mark.parametrize(("pack", "language"), [("care-ru", "ru"), ("sales-es", "es")])
def test_built_in_packs_load(pack: str, language: str) -> None:
    articles = load_articles(pack_articles_dir(pack))
    assert 8 <= len(articles) <= 15
    assert {a.language for a in articles} == {language}
    assert all(a.answer_text and a.tags for a in articles)
    for article in articles:
        if article.kind in ("side_effect", "medical"):
            assert article.approved, article.id


def test_warming_gel_article_is_approved_and_scoped() -> None:
    articles = {a.id: a for a in load_articles(pack_articles_dir("care-ru"))}
    gel = articles["warming-gel-sensation"]
    assert gel.approved and gel.kind == "side_effect"
    assert gel.scoped_to(123456789) and gel.scoped_to("warming-gel")
    text = gel.answer_text.lower()
    for must in ("приток крови", "не ожог", "тёплой водой", "отёк", "врачу", "15 минут"):
        assert must in text, must
