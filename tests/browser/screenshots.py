"""Regenerate the screenshots of the web pages in docs/screenshots/:

    .venv/bin/python -m tests.browser.screenshots

Starts ``suban serve`` on the embedded default (SQLite and in-process Redis in a temporary
directory, the simulator mounted) with the demo data, files a few submissions and sends a few
device events through the API, then drives Debian's Chromium through each page. Chinese needs a
CJK font on the machine (``apt-get install fonts-noto-cjk``): look at the pictures before
committing them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from hall.device_auth import sign_request
from tests.browser.conftest import (
    DESK,
    PHONE,
    SKIP_REASON,
    browser_available,
    launch_chromium,
)
from tests.processes import PROJECT_ROOT, free_port, running_process

OUT = PROJECT_ROOT / "docs" / "screenshots"
SUBAN = str(Path(sys.executable).with_name("suban"))
BEIJING = timezone(timedelta(hours=8))
COMPANY = "91440103MA59D8QK16"
DEVICE_SECRET = "suban-demo-device"
CHEN = ("陈明", "44010319850612301X")
LIN = ("林芳", "440103199003152024")


def _env(var_dir: Path, port: int) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    return inherited | {
        "SUBAN_VAR_DIR": str(var_dir),
        "SUBAN_DATABASE_URL": f"sqlite://{var_dir / 'suban.sqlite3'}",
        "SUBAN_PORT": str(port),
        "SUBAN_WORKERS": "1",
    }


def _cli(command: str, env: dict[str, str]) -> None:
    import subprocess

    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [SUBAN, command], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"suban {command} failed:\n{done.stderr}")


async def _person(http: httpx.AsyncClient, who: tuple[str, str]) -> dict[str, str]:
    r = await http.post("/api/v1/mp/login", json={"code": f"sim:o-shot-{uuid.uuid4().hex[:10]}"})
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    name, id_number = who
    body = {
        "name": name,
        "id_type": "resident_id",
        "id_number": id_number,
        "verify_result": f"sim:{name}:{id_number}",
    }
    (await http.post("/api/v1/mp/realname", json=body, headers=headers)).raise_for_status()
    return headers


def _invoice(buyer: str, item: str, amount: str) -> dict[str, Any]:
    return {
        "invoice_kind": "general",
        "location": "city",
        "buyer": {"name": buyer, "taxpayer_id": "91350100M000100Y43"},
        "lines": [{"name": item, "amount_incl_tax": amount}],
        "remark": "演示数据",
    }


def _report() -> dict[str, Any]:
    today = datetime.now(BEIJING).date()
    return {
        "address": "深圳市南山区示例路 8 号",
        "business_mode": "建筑安装",
        "contract": {
            "name": "示例大厦装修工程合同",
            "number": "HT-2026-001",
            "amount": "500000.00",
            "start": (today + timedelta(days=3)).isoformat(),
            "end": (today + timedelta(days=120)).isoformat(),
            "counterparty_name": "深圳示例建设有限公司",
            "counterparty_id": "91350100M000100Y43",
        },
        "contact": {"name": "林芳", "phone": "13800138000"},
    }


async def _file(
    http: httpx.AsyncClient, headers: dict[str, str], form_code: str, data: dict[str, Any]
) -> dict[str, Any]:
    body = {"form_code": form_code, "taxpayer_id": COMPANY, "data": data}
    r = await http.post(
        "/api/v1/mp/submissions",
        json=body,
        headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
    )
    r.raise_for_status()
    answer: dict[str, Any] = r.json()
    return answer


async def _signed(http: httpx.AsyncClient, device: str, path: str, payload: Any) -> None:
    body = json.dumps(payload).encode()
    headers = sign_request(device, DEVICE_SECRET, "POST", path, body)
    r = await http.post(path, content=body, headers=headers | {"Content-Type": "application/json"})
    if r.status_code >= 400:
        print(f"  {path} answered {r.status_code}: {r.text[:200]}")


async def seed(http: httpx.AsyncClient) -> int:
    """Submissions in the queue and a hall with people in it; returns one submission's id."""
    chen, lin = await _person(http, CHEN), await _person(http, LIN)
    first = await _file(
        http, chen, "proxy_invoice", _invoice("广州示例采购有限公司", "维修服务", "5050.00")
    )
    await _file(
        http, lin, "proxy_invoice", _invoice("佛山示例五金有限公司", "设备安装服务", "12800.00")
    )
    await _file(http, chen, "cross_region_report", _report())
    await _file(http, lin, "proxy_invoice", _invoice("广州示例餐饮有限公司", "咨询服务", "3030.00"))

    for camera, people in (("cam-1", 14), ("cam-2", 9), ("cam-3", 17)):
        await _signed(
            http,
            camera,
            "/api/v1/devices/heartbeat",
            {"camera_id": camera, "people_count": people},
        )
    now = datetime.now(BEIJING)
    events = []
    for n, category in enumerate(["invoice"] * 6 + ["filing"] * 9 + ["registration"] * 2):
        taken = now - timedelta(minutes=20 - n)
        events.append(
            {
                "ticket_no": f"S{n:03d}",
                "category": category,
                "event": "taken",
                "at": taken.isoformat(),
            }
        )
    await _signed(http, "queue-1", "/api/v1/devices/queue-events", {"events": events})
    return int(first["id"])


async def shoot(base_url: str, submission_id: int) -> None:
    from playwright.async_api import async_playwright, expect

    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        try:
            desk = await browser.new_page(viewport=DESK, locale="zh-CN")
            await desk.goto(f"{base_url}/console/")
            await desk.get_by_label("用户名").fill("reviewer")
            await desk.get_by_label("密码", exact=True).fill("suban-demo")
            await desk.get_by_label("密码", exact=True).press("Enter")
            await expect(desk.locator("#queue-rows tr[data-submission-id]").first).to_be_visible()
            await desk.screenshot(path=OUT / "console-queue.png")
            print("  console-queue.png")

            await desk.goto(f"{base_url}/console/#submission/{submission_id}")
            await desk.get_by_role("button", name="认领").click()
            await expect(desk.get_by_role("button", name="审核通过")).to_be_visible()
            await desk.locator("#sub-notice").evaluate("node => node.textContent = ''")
            await desk.screenshot(path=OUT / "console-submission.png")
            print("  console-submission.png")

            screen = await browser.new_page(viewport=DESK, locale="zh-CN")
            await screen.goto(f"{base_url}/hall/liwan/display")
            await expect(screen.locator("#board")).to_have_attribute("data-connection", "live")
            await expect(screen.locator("#people-count")).not_to_have_text("—")
            await screen.wait_for_timeout(500)
            await screen.screenshot(path=OUT / "hall-display.png")
            print("  hall-display.png")

            phone = await browser.new_page(viewport=PHONE, locale="zh-CN")
            await phone.goto(f"{base_url}/h5/")
            await phone.get_by_role("button", name="微信一键登录").click()
            await phone.get_by_role("button", name="开始人脸核身").click()
            await expect(phone.locator("#quote-payable")).to_contain_text("¥")
            # The lines and the quote beside them, under the sticky title bar.
            await phone.evaluate(
                "window.scrollTo(0, document.getElementById('inv-lines').closest('.card')"
                ".getBoundingClientRect().top + window.scrollY - 64)"
            )
            await phone.screenshot(path=OUT / "h5-filing.png")
            print("  h5-filing.png")
        finally:
            await browser.close()


async def run(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False) as http:
        submission_id = await seed(http)
    await shoot(base_url, submission_id)


def main() -> int:
    if not browser_available():
        print(SKIP_REASON, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="suban-shots-") as tmp:
        var_dir, port = Path(tmp), free_port()
        env = _env(var_dir, port)
        print("loading the demo data…")
        _cli("migrate", env)
        _cli("demo", env)
        with running_process(
            [SUBAN, "serve"],
            ready_url=f"http://127.0.0.1:{port}/healthz",
            log_path=var_dir / "serve.log",
            env=env,
        ):
            print(f"writing {OUT.relative_to(PROJECT_ROOT)}/")
            asyncio.run(run(f"http://127.0.0.1:{port}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
