from __future__ import annotations

from hall.halls import list_halls, upsert_hall
from tests.conftest import LiveServer


async def test_demo_hall_is_listed_with_its_categories(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/halls")
    assert r.status_code == 200
    halls = {h["hall_id"]: h for h in r.json()}
    liwan = halls["liwan"]
    assert liwan["name"] == "荔湾区办税服务厅"
    assert [c["code"] for c in liwan["categories"]] == [
        "invoice",
        "filing",
        "registration",
        "consulting",
    ]
    assert liwan["open_hours"][0]["weekdays"] == [1, 2, 3, 4, 5]


async def test_upsert_hall_replaces_categories_in_order(live: LiveServer) -> None:
    await upsert_hall("test-hall", "测试厅", "某路 1 号", [], [("a", "甲"), ("b", "乙")])
    await upsert_hall("test-hall", "测试厅二", "某路 2 号", [], [("c", "丙"), ("a", "甲一")])
    hall = {h.hall_id: h for h in await list_halls()}["test-hall"]
    assert hall.name == "测试厅二"
    assert hall.categories == [("c", "丙"), ("a", "甲一")]
