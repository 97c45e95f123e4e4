"""The receipt (回执) over HTTP: a PDF for those who may see the submission, 404 for others."""

from __future__ import annotations

from tests.conftest import LiveServer
from tests.miniapp_api.filing_helpers import SHOP, filed, person_token
from tests.miniapp_api.test_mp_grants import fresh_id
from tests.miniapp_api.test_mp_realname import auth


async def test_the_applicant_gets_a_pdf_receipt(live: LiveServer) -> None:
    chen = await person_token(live)
    created = await filed(live, chen, "proxy_invoice", taxpayer_id=SHOP)
    url = f"/api/v1/mp/submissions/{created['id']}/receipt.pdf"
    r = await live.http.get(url, headers=auth(chen))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    assert created["tracking_no"] in r.headers["content-disposition"]
    stranger = await person_token(live, ("丁某", fresh_id()))
    assert (await live.http.get(url, headers=auth(stranger))).status_code == 404
