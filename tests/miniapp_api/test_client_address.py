"""Behind ``SUBAN_PROXIES_COUNT`` proxies, per-address limits count the client's address from
X-Forwarded-For; with none, a forged header changes nothing."""

from __future__ import annotations

import dataclasses
from datetime import date

from forms.tracking import new_tracking_no
from miniapp_api.settings import Settings
from tests.conftest import serve_app


async def _lookups(settings: Settings, addresses: list[str]) -> list[int]:
    async with serve_app(settings) as server:
        codes = []
        for address in addresses:
            r = await server.http.get(
                "/api/v1/progress",
                params={"tracking_no": new_tracking_no(date.today()), "check": "0000"},
                headers={"X-Forwarded-For": address},
            )
            codes.append(r.status_code)
        return codes


async def test_behind_one_proxy_each_client_has_its_own_bucket(
    settings: Settings, redis_client: object
) -> None:
    behind = dataclasses.replace(settings, proxies_count=1, progress_ip_limit=2)
    codes = await _lookups(behind, ["203.0.113.7", "203.0.113.7", "203.0.113.7", "203.0.113.8"])
    assert codes == [404, 404, 429, 404]


async def test_without_a_proxy_a_forged_header_is_ignored(
    settings: Settings, redis_client: object
) -> None:
    direct = dataclasses.replace(settings, proxies_count=0, progress_ip_limit=2)
    codes = await _lookups(direct, ["198.51.100.1", "198.51.100.2", "198.51.100.3"])
    assert codes == [404, 404, 429]
