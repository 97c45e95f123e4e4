"""Business guides: the packaged files, their checks, the keyword search, loading into the
database and the per-worker cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forms.catalogue import catalogue
from hall.guide_search import build_search_text, parse_search_text, query_terms
from hall.guides import (
    GuideCache,
    GuideError,
    GuideRecord,
    GuideSet,
    GuideSpec,
    forget_cached_guides,
    guide_scene,
    load_guide_files,
    packaged_guides,
    parse_guide,
    upsert_guides,
)
from hall.models import Guide
from tests.conftest import LiveServer

GOOD: dict[str, Any] = {
    "code": "sample",
    "title": "示例业务",
    "summary": "一段说明。",
    "materials": ["经办人身份证件原件"],
    "steps": ["取号", "到窗口办理"],
    "location": "荔湾区办税服务厅",
    "position": 1,
}


def packaged_set() -> GuideSet:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    return GuideSet(
        GuideRecord(
            code=s.code,
            title=s.title,
            summary=s.summary,
            materials=s.materials,
            steps=s.steps,
            location=s.location,
            hall_id=s.hall_id,
            category=s.category,
            form_code=s.form_code,
            keywords=s.keywords,
            position=s.position,
            updated_at=now,
            indexed=parse_search_text(s.search_text()),
        )
        for s in packaged_guides()
    )


def codes(query: str) -> list[str]:
    return [hit.guide.code for hit in packaged_set().search(query)]


# --------------------------------------------------------------------------- packaged files


def test_packaged_guides_cover_both_forms_and_every_hall_category() -> None:
    guides = {g.code: g for g in packaged_guides()}
    assert guides["proxy_invoice"].title == "代开增值税发票"
    assert guides["proxy_invoice"].form_code == "proxy_invoice"
    assert guides["proxy_invoice"].category == "invoice"
    assert guides["cross_region_report"].form_code == "cross_region_report"
    assert {g.category for g in guides.values()} == {
        "invoice",
        "filing",
        "registration",
        "consulting",
    }
    assert "个税" in guides["iit_annual"].keywords


def test_every_related_form_is_in_the_catalogue() -> None:
    for guide in packaged_guides():
        if guide.form_code is not None:
            assert catalogue().get(guide.form_code) is not None, guide.code


def test_every_code_fits_a_mini_program_scene() -> None:
    for guide in packaged_guides():
        assert len(guide_scene(guide.code)) <= 32


def test_packaged_guides_come_in_position_order() -> None:
    positions = [g.position for g in packaged_guides()]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


# --------------------------------------------------------------------------- file checks


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"colour": "red"}, "unknown keys ['colour']"),
        ({"materials": []}, "materials: must be a non-empty list"),
        ({"steps": ["取号", "取号"]}, "steps: an entry appears twice"),
        ({"steps": ["取号", ""]}, "steps.1: must be a non-empty string"),
        ({"title": "长" * 101}, "title: at most 100"),
        ({"code": "Sample"}, "code: lower-case letters"),
        ({"code": "a" * 31}, "code: lower-case letters"),
        ({"position": -1}, "position: must be a non-negative integer"),
        ({"position": True}, "position: must be a non-negative integer"),
        ({"category": "invoice"}, "a category belongs to a hall"),
        ({"keywords": "发票"}, "keywords: must be a non-empty list"),
    ],
)
def test_a_malformed_guide_is_refused_naming_the_key(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(GuideError) as caught:
        parse_guide("guides/sample.toml", GOOD | change, expected_code="sample")
    assert complaint in str(caught.value)
    assert "guides/sample.toml" in str(caught.value)


def test_a_missing_key_is_named() -> None:
    data = {k: v for k, v in GOOD.items() if k != "location"}
    with pytest.raises(GuideError, match=r"missing keys \['location'\]"):
        parse_guide("guides/sample.toml", data, expected_code="sample")


def test_the_code_must_match_the_file_name() -> None:
    with pytest.raises(GuideError, match="must match the file name"):
        parse_guide("guides/other.toml", GOOD, expected_code="other")


def test_a_good_guide_parses_with_optional_keys_absent() -> None:
    spec = parse_guide("guides/sample.toml", GOOD, expected_code="sample")
    assert spec.hall_id is None
    assert spec.category is None
    assert spec.form_code is None
    assert spec.keywords == ()
    assert spec.steps == ("取号", "到窗口办理")


def _write(directory: Path, name: str, body: str) -> None:
    (directory / name).write_text(body, encoding="utf-8")


GOOD_TOML = """
code = "{code}"
title = "示例"
summary = "说明"
materials = ["经办人身份证件原件"]
steps = ["取号"]
location = "窗口"
position = {position}
"""


def test_a_directory_of_files_loads_in_position_order(tmp_path: Path) -> None:
    _write(tmp_path, "b.toml", GOOD_TOML.format(code="b", position=1))
    _write(tmp_path, "a.toml", GOOD_TOML.format(code="a", position=2))
    _write(tmp_path, "notes.txt", "not a guide")
    assert [g.code for g in load_guide_files(tmp_path)] == ["b", "a"]


def test_two_guides_on_one_position_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", GOOD_TOML.format(code="a", position=1))
    _write(tmp_path, "b.toml", GOOD_TOML.format(code="b", position=1))
    with pytest.raises(GuideError, match="share a position"):
        load_guide_files(tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "a.toml", 'code = "a"\ntitle = ')
    with pytest.raises(GuideError, match=r"guides/a.toml: not valid TOML"):
        load_guide_files(tmp_path)


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GuideError, match="no guide files"):
        load_guide_files(tmp_path)


# --------------------------------------------------------------------------- search


def test_proxy_invoice_comes_first_for_daikai_fapiao() -> None:
    found = codes("代开发票")
    assert found[0] == "proxy_invoice"


def test_cross_region_finds_the_report() -> None:
    assert codes("跨区域") == ["cross_region_report"]


def test_fapiao_finds_several_with_the_two_invoice_titles_first() -> None:
    found = codes("发票")
    assert len(found) >= 3
    assert set(found[:2]) == {"proxy_invoice", "invoice_claim"}


def test_geshui_finds_the_annual_settlement_guide_through_its_keyword() -> None:
    assert codes("个税")[0] == "iit_annual"


def test_nonsense_finds_nothing() -> None:
    assert codes("火星") == []
    assert codes("火星移民") == []


def _record(code: str, title: str, keywords: list[str], body: str, position: int) -> GuideRecord:
    return GuideRecord(
        code=code,
        title=title,
        summary=body,
        materials=(),
        steps=(),
        location="",
        hall_id=None,
        category=None,
        form_code=None,
        keywords=tuple(keywords),
        position=position,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
        indexed=parse_search_text(build_search_text(title, keywords, [body])),
    )


def test_a_title_match_outranks_a_keyword_match_outranks_a_body_match() -> None:
    # Listed in the opposite order, so position cannot explain the ranking.
    guides = GuideSet(
        [
            _record("in_body", "其他业务", [], "可申请退税", 1),
            _record("in_keywords", "另一业务", ["退税"], "说明", 2),
            _record("in_title", "退税申请", [], "说明", 3),
            _record("elsewhere", "无关业务", ["登记"], "说明", 4),
        ]
    )
    hits = guides.search("退税")
    assert [h.guide.code for h in hits] == ["in_title", "in_keywords", "in_body"]
    assert hits[0].score > hits[1].score > hits[2].score > 0


def test_equal_scores_keep_the_position_order() -> None:
    guides = GuideSet(
        [_record("second", "退税乙", [], "", 2), _record("first", "退税甲", [], "", 1)]
    )
    assert [h.guide.code for h in guides.search("退税")] == ["first", "second"]


def test_a_keyword_only_guide_is_found_by_its_keyword() -> None:
    assert codes("外经证") == ["cross_region_report"]


def test_a_blank_query_lists_every_guide_in_position_order() -> None:
    everything = packaged_set().search("   ")
    assert [h.guide.code for h in everything] == [g.code for g in packaged_guides()]
    assert {h.score for h in everything} == {0.0}


def test_punctuation_alone_finds_nothing() -> None:
    assert codes("！？，。") == []


def test_words_and_full_width_digits_are_searched_as_words() -> None:
    assert codes("１２３６６") == ["iit_annual"]
    assert codes("个税app") == codes("个税App")


def test_spaces_split_the_query_into_separate_runs() -> None:
    terms = query_terms("代开 发票")
    assert "开发" not in terms.strong
    assert {"代开", "发票"} <= terms.strong


def test_the_search_text_round_trips_per_field() -> None:
    text = build_search_text("代开发票", ["个税"], ["经办人身份证件"])
    fields = parse_search_text(text)
    assert "代开" in fields.title
    assert "个税" in fields.keywords
    assert "个税" not in fields.title
    assert "身份" in fields.body


# --------------------------------------------------------------------------- database


def a_spec(**changes: Any) -> GuideSpec:
    spec = parse_guide(
        "guides/test_only_guide.toml",
        GOOD | {"code": "test_only_guide", "title": "测试专用指南", "position": 999},
        expected_code="test_only_guide",
    )
    return replace(spec, **({"hall_id": "liwan", "category": "consulting"} | changes))


async def test_the_demo_loaded_every_packaged_guide(live: LiveServer) -> None:
    stored = {g.code: g for g in await Guide.all()}
    for spec in packaged_guides():
        assert stored[spec.code].title == spec.title
        assert stored[spec.code].search_text == spec.search_text()
        assert stored[spec.code].hall_id == spec.hall_id  # type: ignore[attr-defined]


async def test_loading_again_writes_nothing_and_keeps_updated_at(live: LiveServer) -> None:
    before = {g.code: g.updated_at for g in await Guide.all()}
    written, unchanged = await upsert_guides(packaged_guides())
    assert (written, unchanged) == (0, len(packaged_guides()))
    after = {g.code: g.updated_at for g in await Guide.all()}
    assert after == before


async def test_a_changed_guide_is_written_and_seen_by_the_cache(live: LiveServer) -> None:
    cache = GuideCache(ttl=3600)
    try:
        assert await upsert_guides([a_spec()]) == (1, 0)
        first = (await cache.guides()).get("test_only_guide")
        assert first is not None
        assert await upsert_guides([a_spec(title="测试专用指南（新版）")]) == (1, 0)
        second = (await cache.guides()).get("test_only_guide")
        assert second is not None
        assert second.title == "测试专用指南（新版）"
        assert second.version != first.version
        assert "新版" in (await cache.guides()).search("新版")[0].guide.title
    finally:
        await Guide.filter(code="test_only_guide").delete()
        forget_cached_guides()


async def test_loading_leaves_guides_no_file_names(live: LiveServer) -> None:
    try:
        await upsert_guides([a_spec()])
        await upsert_guides(packaged_guides())
        assert await Guide.exists(code="test_only_guide")
    finally:
        await Guide.filter(code="test_only_guide").delete()
        forget_cached_guides()


async def test_an_unknown_hall_or_category_is_refused(live: LiveServer) -> None:
    with pytest.raises(GuideError, match="hall 'mars' does not exist"):
        await upsert_guides([a_spec(hall_id="mars", category=None)])
    with pytest.raises(GuideError, match="has no category 'rockets'"):
        await upsert_guides([a_spec(category="rockets")])
    assert not await Guide.exists(code="test_only_guide")


async def test_the_cache_reads_again_after_its_ttl(live: LiveServer) -> None:
    now = [0.0]
    cache = GuideCache(ttl=60, clock=lambda: now[0])
    first = await cache.guides()
    assert await cache.guides() is first
    now[0] = 61.0
    assert await cache.guides() is not first
