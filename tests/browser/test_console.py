"""The staff console in a real browser: a reviewer signs in and decides on what a taxpayer filed
through the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth.models import StaffUser
from tests.browser.conftest import OpenPage, expect
from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import COMPANY, filed, person_token
from tests.miniapp_api.test_mp_realname import auth
from tests.wecom.test_oauth import new_userid

if TYPE_CHECKING:
    from playwright.async_api import Page

MAX_QUEUE_PAGES = 50
DEMO_PASSWORD = "suban-demo"  # API.md, "Demo data"


async def sign_in(page: Page, username: str = "reviewer", password: str = DEMO_PASSWORD) -> None:
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码", exact=True).fill(password)
    # Enter submits, as it should for a keyboard user.
    await page.get_by_label("密码", exact=True).press("Enter")


async def test_reviewer_signs_in_claims_and_approves_a_filed_submission(
    live: LiveServer, open_page: OpenPage
) -> None:
    applicant = await person_token(live)
    submission = await filed(live, applicant, taxpayer_id=COMPANY)

    page = await open_page(f"{live.base_url}/console/")
    await sign_in(page)
    await expect(page.locator("#who-name")).to_have_text("示例审核员")

    # The queue is worked oldest first: earlier tests' filings may come before this one.
    row = page.locator(f'tr[data-submission-id="{submission["id"]}"]')
    for _ in range(MAX_QUEUE_PAGES):
        await expect(page.locator("#page-info")).to_contain_text("共")
        if await row.count():
            break
        await page.get_by_role("button", name="下一页").click()
    await expect(row).to_contain_text(submission["tracking_no"])
    await row.get_by_role("link", name="查看").click()

    await expect(page.locator("#sub-title")).to_contain_text(submission["tracking_no"])
    await expect(page.locator("#sub-data")).to_contain_text("广州示例采购有限公司")
    await expect(page.locator("#sub-timeline")).to_contain_text("已提交")
    await page.get_by_role("button", name="认领").click()
    await expect(page.locator("#sub-summary")).to_contain_text("审核中")
    await page.get_by_role("button", name="审核通过").click()
    await expect(page.locator("#sub-notice")).to_contain_text("已通过")
    await expect(page.locator("#sub-timeline")).to_contain_text("已通过")

    r = await live.http.get(f"/api/v1/mp/submissions/{submission['id']}", headers=auth(applicant))
    assert r.json()["status"] == "approved"


async def test_wrong_password_keeps_the_reviewer_on_the_login_form(
    live: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(f"{live.base_url}/console/")
    await sign_in(page, password="not-the-password")
    await expect(page.locator("#login-error")).not_to_be_empty()
    await expect(page.locator("#app-view")).to_be_hidden()


async def test_an_expired_session_goes_back_to_login(live: LiveServer, open_page: OpenPage) -> None:
    page = await open_page(f"{live.base_url}/console/")
    await page.evaluate("sessionStorage.setItem('suban.staff.token', 'no-such-token')")
    await page.reload()
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.get_by_label("用户名")).to_be_focused()


async def sign_in_on_the_simulated_wecom_page(page: Page, userid: str) -> None:
    """WeCom's authorize page identifies the member itself; the simulator's asks for the userid."""
    await expect(page.get_by_role("heading", name="企业微信登录（模拟器）")).to_be_visible()
    await page.get_by_label("成员 userid").fill(userid)
    await page.get_by_role("button", name="以该成员登录").click()


async def test_staff_member_signs_in_through_wecom_and_lands_on_the_queue(
    live: LiveServer, open_page: OpenPage
) -> None:
    userid = new_userid()
    reviewer = await StaffUser.get(username="reviewer")
    reviewer.wecom_userid = userid
    await reviewer.save(update_fields=["wecom_userid"])
    try:
        page = await open_page(f"{live.base_url}/console/")
        await page.get_by_role("link", name="使用企业微信登录").click()
        await sign_in_on_the_simulated_wecom_page(page, userid)

        await expect(page.locator("#who-name")).to_have_text("示例审核员")
        await expect(page.get_by_role("heading", name="审核队列")).to_be_visible()
        await expect(page.locator("#page-info")).to_contain_text("共")
        assert page.url == f"{live.base_url}/console/"
        token = await page.evaluate("sessionStorage.getItem('suban.staff.token')")
        me = await live.http.get("/api/v1/staff/me", headers=auth(token))
        assert me.json()["username"] == "reviewer"
        # The callback's entry, with the one-time code, was replaced: back is WeCom's page.
        await page.go_back()
        assert "/wecom/oauth/callback" not in page.url
        assert "code=" not in page.url
    finally:
        reviewer.wecom_userid = None
        await reviewer.save(update_fields=["wecom_userid"])


async def test_wecom_login_of_no_staff_member_explains_and_links_back(
    live: LiveServer, open_page: OpenPage
) -> None:
    page = await open_page(f"{live.base_url}/console/")
    await page.get_by_role("link", name="使用企业微信登录").click()
    await sign_in_on_the_simulated_wecom_page(page, new_userid())

    await expect(page.get_by_role("alert")).to_have_text("该企业微信账号未开通工作人员权限")
    assert "code=" not in page.url
    assert "state=" not in page.url
    assert await page.evaluate("sessionStorage.getItem('suban.staff.token')") is None
    await page.get_by_role("link", name="返回工作人员控制台登录").click()
    await expect(page.get_by_label("用户名")).to_be_visible()
