"""The form catalogue over HTTP: public, the list and each form's schema, unknown codes 404 in
the contract's error shape; a malformed catalogue stops start-up."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from forms.catalogue import CatalogueError, catalogue
from miniapp_api.app import create_app
from miniapp_api.routes import forms as forms_routes
from miniapp_api.settings import Settings
from tests.conftest import LiveServer


async def test_the_list_names_every_form(live: LiveServer) -> None:
    r = await live.http.get("/api/v1/forms")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "public, max-age=300"
    listed = {row["code"]: row for row in r.json()}
    assert listed == {
        "proxy_invoice": {
            "code": "proxy_invoice",
            "title": "代开增值税发票缴纳税款申报单",
            "version": 1,
            "needs_taxpayer": False,
        },
        "cross_region_report": {
            "code": "cross_region_report",
            "title": "跨区域涉税事项报告表",
            "version": 1,
            "needs_taxpayer": True,
        },
    }


@pytest.mark.parametrize("code", ["proxy_invoice", "cross_region_report"])
async def test_a_forms_schema_is_public(live: LiveServer, code: str) -> None:
    r = await live.http.get(f"/api/v1/forms/{code}")
    assert r.status_code == 200, r.text
    spec = catalogue().get(code)
    assert spec is not None
    assert r.json() == spec.schema()


async def test_the_proxy_invoice_schema_over_http(live: LiveServer) -> None:
    schema: dict[str, Any] = (await live.http.get("/api/v1/forms/proxy_invoice")).json()
    assert schema["code"] == "proxy_invoice"
    assert schema["needs_taxpayer"] is False
    fields = {f["name"]: f for f in schema["fields"]}
    assert fields["buyer"]["type"] == "object"
    lines = fields["lines"]
    assert lines["type"] == "list"
    amount = next(f for f in lines["items"]["fields"] if f["name"] == "amount_incl_tax")
    assert amount["type"] == "money"
    assert amount["label"] == "含税金额"
    assert amount["required"] is True
    assert [r["name"] for r in schema["rules"]] == ["no_special_invoice_to_natural_person"]


@pytest.mark.parametrize("code", ["no_such_form", "PROXY_INVOICE", "proxy-invoice"])
async def test_an_unknown_form_is_404_in_the_contracts_shape(live: LiveServer, code: str) -> None:
    r = await live.http.get(f"/api/v1/forms/{code}")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "NOT_FOUND", "message": "找不到该文书类型"}}
    assert r.headers["x-request-id"]


async def test_the_catalogue_routes_are_in_the_openapi_document(live: LiveServer) -> None:
    document = (await live.http.get("/docs/openapi.json")).json()
    paths = document["paths"]
    assert paths["/api/v1/forms"]["get"]["tags"] == ["forms"]
    assert any(path.startswith("/api/v1/forms/{code") for path in paths)


async def test_a_malformed_catalogue_stops_start_up(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise CatalogueError("catalogue/proxy_invoice.toml: fields.lines.type: 'lst' is not one of")

    monkeypatch.setattr(forms_routes, "catalogue", broken)
    app = create_app(settings, name=f"suban_test_bad_catalogue_{uuid.uuid4().hex[:8]}")
    server = await app.create_server(
        host=settings.host, port=settings.port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    try:
        await server.startup()
        with pytest.raises(CatalogueError, match=r"proxy_invoice\.toml"):
            await server.before_start()
    finally:
        # Whatever started before the catalogue was checked is stopped again.
        await server.before_stop()
        closing = server.close()
        if closing is not None:
            await closing
        await server.after_stop()
