"""Keyword search over the business guides, for Chinese typed without spaces.

Terms are character bigrams plus single characters of each run of Chinese, and whole words of
each run of letters and digits. Not jieba: the guide set is a few dozen short texts, so a
dictionary buys nothing a bigram index does not, while it costs about a second and tens of MB per
worker to load, has had no release since 2020, and segments a query and a document
independently — "代开发票" can come out as 代/开发/票 and then miss "代开增值税发票". Bigrams of the
query always meet bigrams of the text they were typed from.

A guide matches when it holds at least one of the query's strong terms (a bigram or a word);
single characters only add to the score, since 税 or 发 alone would match nearly every guide.
Each term scores once, in the best field it appears in: title over keywords over the body
(summary, materials, steps, where to go).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Runs of CJK ideographs (the basic block and extension A), or of ASCII letters and digits.
_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9]+")

FIELD_WEIGHTS = {"title": 4.0, "keywords": 3.0, "body": 1.0}
STRONG_WEIGHT = 2.0
UNIGRAM_WEIGHT = 1.0

# search_text holds one line per field: its tag, then its terms (space-separated).
_TAGS = {"title": "t", "keywords": "k", "body": "b"}
_FIELDS_BY_TAG = {tag: name for name, tag in _TAGS.items()}


@dataclass(frozen=True, slots=True)
class QueryTerms:
    strong: frozenset[str]
    unigrams: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.strong and not self.unigrams


def _runs(text: str) -> list[str]:
    # NFKC folds full-width letters and digits (ＶＡＴ, １２３６６) to ASCII.
    return _RUN.findall(unicodedata.normalize("NFKC", text).lower())


def _is_cjk(run: str) -> bool:
    return not run[0].isascii()


def query_terms(text: str) -> QueryTerms:
    strong: set[str] = set()
    unigrams: set[str] = set()
    for run in _runs(text):
        if not _is_cjk(run):
            strong.add(run)
            continue
        unigrams.update(run)
        strong.update(run[i : i + 2] for i in range(len(run) - 1))
    return QueryTerms(frozenset(strong), frozenset(unigrams))


def text_terms(texts: Iterable[str]) -> set[str]:
    """Every term a query could hit in ``texts``: bigrams and characters of Chinese runs, words
    and (so that a query of one letter-digit word finds it) nothing finer of Latin runs."""
    terms: set[str] = set()
    for text in texts:
        query = query_terms(text)
        terms |= query.strong | query.unigrams
    return terms


def build_search_text(title: str, keywords: Sequence[str], body: Sequence[str]) -> str:
    """The indexed terms of one guide, stored in its ``search_text`` column."""
    fields = {"title": [title], "keywords": list(keywords), "body": list(body)}
    return "\n".join(
        f"{_TAGS[name]} " + " ".join(sorted(text_terms(texts))) for name, texts in fields.items()
    )


@dataclass(frozen=True, slots=True)
class IndexedFields:
    title: frozenset[str]
    keywords: frozenset[str]
    body: frozenset[str]


def parse_search_text(search_text: str) -> IndexedFields:
    found: dict[str, frozenset[str]] = {name: frozenset() for name in _TAGS}
    for line in search_text.splitlines():
        tag, _, terms = line.partition(" ")
        name = _FIELDS_BY_TAG.get(tag)
        if name is not None:
            found[name] = frozenset(terms.split())
    return IndexedFields(found["title"], found["keywords"], found["body"])


def _best_field_weight(term: str, fields: IndexedFields) -> float:
    if term in fields.title:
        return FIELD_WEIGHTS["title"]
    if term in fields.keywords:
        return FIELD_WEIGHTS["keywords"]
    if term in fields.body:
        return FIELD_WEIGHTS["body"]
    return 0.0


def score(query: QueryTerms, fields: IndexedFields) -> float:
    """0 when the guide does not match ``query``; higher is a better match."""
    strong = sum(STRONG_WEIGHT * _best_field_weight(t, fields) for t in query.strong)
    if query.strong and strong == 0:
        return 0.0
    weak = sum(UNIGRAM_WEIGHT * _best_field_weight(t, fields) for t in query.unigrams)
    return strong + weak
