"""The app's routes as the security tests sweep them: read from the running app's router, so a
route added later is swept (or makes a test fail until someone says how) without editing a list
of paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MP = "/api/v1/mp/"
STAFF = "/api/v1/staff/"
WECOM_API = "/api/v1/wecom/"
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>")
# Methods sanic-ext may add to every route (auto OPTIONS for CORS preflights): not handlers.
_AUTOMATIC = frozenset({"OPTIONS", "HEAD"})


@dataclass(frozen=True)
class Route:
    name: str  # without the app's name: "mp_submissions.submission_detail"
    path: str  # "/api/v1/mp/submissions/<submission_id:int>"
    methods: tuple[str, ...]
    params: tuple[str, ...]

    def url(self, values: dict[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match[1]
            assert name in values, f"{self.name}: no value for <{name}>"
            return str(values[name])

        return _PARAM.sub(fill, self.path)


def app_routes(app: Any) -> list[Route]:
    """Every route of ``app`` with the methods its handlers answer."""
    found = []
    for route in app.router.routes:
        methods = tuple(sorted(set(route.methods) - _AUTOMATIC))
        if not methods:
            continue
        path = "/" + route.path.lstrip("/")
        found.append(
            Route(
                name=route.name.split(".", 1)[1],
                path=path,
                methods=methods,
                params=tuple(_PARAM.findall(path)),
            )
        )
    return sorted(found, key=lambda r: (r.path, r.name))


def under(app: Any, prefix: str) -> list[Route]:
    return [r for r in app_routes(app) if r.path.startswith(prefix)]
