"""What a test can make an endpoint do instead of answering normally."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    ERRCODE = "errcode"  # answer 200 with {"errcode": n}
    HTTP = "http"  # answer an HTTP error status (default 500)
    DROP = "drop"  # close the connection without answering
    HANG = "hang"  # answer nothing for ``ms`` milliseconds (a client timeout)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    errcode: int = -1
    errmsg: str = "system error"
    status: int = 500
    ms: int = 30_000

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Raises ValueError (for a 400) on an unknown kind or a bad number."""
        kind = FaultKind(str(data.get("kind", "")))
        fault = cls(kind=kind)
        if kind is FaultKind.ERRCODE:
            errcode = int(data.get("errcode", -1))
            errmsg = str(data.get("errmsg") or DEFAULT_ERRMSGS.get(errcode, "simulated error"))
            fault = cls(kind=kind, errcode=errcode, errmsg=errmsg)
        elif kind is FaultKind.HTTP:
            status = int(data.get("status", 500))
            if not 400 <= status <= 599:
                raise ValueError("status must be 4xx or 5xx")
            fault = cls(kind=kind, status=status)
        elif kind is FaultKind.HANG:
            fault = cls(kind=kind, ms=int(data.get("ms", 30_000)))
        return fault


DEFAULT_ERRMSGS: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40014: "invalid access_token",
    42001: "access_token expired",
    40029: "invalid code",
    40163: "code been used",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
}
