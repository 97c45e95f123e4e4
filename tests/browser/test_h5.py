"""The H5 preview in a real browser: a taxpayer logs in through the simulator, passes real-name
verification, sees the quote follow the amounts and files a proxy invoice."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from tests.browser.conftest import PHONE, OpenPage, expect
from tests.conftest import LiveServer
from tests.miniapp_api.test_mp_realname import auth, login
from tests.wecom.test_binding import bound_member, fresh_person
from wecom.models import WeComMember


async def test_preview_logs_in_verifies_quotes_and_files_a_proxy_invoice(
    live: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(f"{live.base_url}/h5/", viewport=PHONE)
    await page.get_by_label("模拟 openid").fill(f"o-h5-{uuid.uuid4().hex[:12]}")
    await page.get_by_role("button", name="微信一键登录").click()

    # Prefilled with the demo's 陈明, legal representative of the demo company.
    await expect(page.get_by_label("姓名")).to_have_value("陈明")
    await page.get_by_role("button", name="开始人脸核身").click()
    await expect(page.get_by_label("销售方（纳税人）")).to_have_value("91440103MA59D8QK16")
    await expect(page.locator("#quote-payable")).to_contain_text("¥")

    # The quote follows the amount: the page shows what the API answers for the new lines.
    await page.get_by_label("含税金额").fill("10100.00")
    expected = await _payable(live, "10100.00")
    await expect(page.locator("#quote-payable")).to_have_text(f"¥{expected}")

    await page.get_by_role("button", name="提交申请").click()
    status = page.locator("#progress-status")
    await expect(status).to_have_text("已提交")
    await expect(status).to_have_attribute("data-status", "submitted")
    await expect(page.locator("#submissions")).to_contain_text("代开增值税发票")


async def _payable(live: LiveServer, amount: str) -> str:
    token = await login(live, f"o-h5q-{uuid.uuid4().hex[:12]}")
    body = {
        "seller_kind": "small_scale",
        "location": "city",
        "lines": [{"name": "维修服务", "amount_incl_tax": amount}],
    }
    r = await live.http.post("/api/v1/mp/invoice-quote", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    payable: str = r.json()["payable"]
    return payable


async def test_preview_books_an_appointment(live: LiveServer, open_page: OpenPage) -> None:
    day = await _day_with_free_slot(live)
    if day is None:
        pytest.skip("no bookable slot of the demo hall in the next 14 days (slots route missing?)")

    page = await open_page(f"{live.base_url}/h5/", viewport=PHONE)
    await page.get_by_role("button", name="微信一键登录").click()
    await page.get_by_role("button", name="开始人脸核身").click()
    await expect(page.locator("#quote-payable")).to_contain_text("¥")

    await page.get_by_role("link", name="预约").click()
    await page.get_by_label("日期").fill(day)
    await page.get_by_label("业务类别").select_option("invoice")
    await page.get_by_role("button", name="查询可预约时段").click()
    await page.locator("#slots").get_by_role("button", name="预约").first.click()
    await expect(page.locator("#flash")).to_contain_text("已预约")
    await expect(page.locator("#appointments")).to_contain_text("已预约")
    await expect(page.locator("#appointments")).to_contain_text(day)


async def _day_with_free_slot(live: LiveServer) -> str | None:
    today = date.today()
    for offset in range(1, 15):
        day = (today + timedelta(days=offset)).isoformat()
        r = await live.http.get(
            "/api/v1/halls/liwan/slots", params={"date": day, "category": "invoice"}
        )
        if r.status_code == 404:
            return None
        if r.status_code == 200 and any(slot["remaining"] > 0 for slot in r.json()):
            return day
    return None


async def test_bound_wecom_member_lands_on_the_preview_signed_in_as_the_person(
    live: LiveServer, open_page: OpenPage
) -> None:
    # The preview has no WeCom entry of its own (it stands for the mini-program); a member comes
    # from the WeCom app's menu, which points at the OAuth start with where to land.
    mp_token = await fresh_person(live)
    userid, _, person_id = await bound_member(live, mp_token)
    me = await live.http.get("/api/v1/mp/me", headers=auth(mp_token))
    name_masked = me.json()["person"]["name_masked"]
    try:
        page = await open_page(
            f"{live.base_url}/wecom/oauth/start?next=%2Fh5%2F%23home", viewport=PHONE
        )
        await page.get_by_label("成员 userid").fill(userid)
        await page.get_by_role("button", name="以该成员登录").click()

        await expect(page.get_by_role("heading", name="我的")).to_be_visible()
        await expect(page.locator("#me")).to_contain_text(name_masked)
        assert page.url == f"{live.base_url}/h5/#home"
        token = await page.evaluate("sessionStorage.getItem('suban.h5.token')")
        assert token.startswith("wecom_")
        assert await page.evaluate("sessionStorage.getItem('suban.staff.token')") is None
    finally:
        await WeComMember.filter(person_id=person_id).delete()
