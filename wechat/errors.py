"""What can go wrong when talking to Tencent, as exception types callers can catch.

Every non-zero ``errcode`` becomes a :class:`WeChatError` subclass chosen by :data:`ERRCODE_TYPES`,
so the mini-program and WeCom clients raise the same types for the same codes. Failures that never
produced an ``errcode`` (network, timeouts, 5xx) are :class:`WeChatUnavailable`, which callers map
to HTTP 503.
"""

from __future__ import annotations


class WeChatError(Exception):
    """Tencent answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"[{errcode}] {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class InvalidCode(WeChatError):
    """A login / phone / OAuth code is unknown, expired or already used."""


class InvalidAccessToken(WeChatError):
    """The access token was rejected (another party refreshed it, or it never existed)."""


class AccessTokenExpired(WeChatError):
    """The access token ran past its lifetime."""


class InvalidCredential(WeChatError):
    """Our appid / secret / corp id is wrong: a configuration error, retrying will not help."""


class FrequencyLimited(WeChatError):
    """Tencent's rate limit; not retried, since retrying only digs the hole deeper."""


class SystemBusy(WeChatError):
    """``errcode -1``: Tencent asks to retry later; raised after our own retries ran out."""


class OtherWeChatError(WeChatError):
    """Any ``errcode`` without a dedicated type; inspect ``errcode``."""


class WeChatUnavailable(Exception):
    """No usable answer: connection failure, timeout or HTTP 5xx after retries, or a token
    refresh that did not finish in time. Carries no ``errcode``."""


ERRCODE_TYPES: dict[int, type[WeChatError]] = {
    -1: SystemBusy,
    40001: InvalidAccessToken,
    40014: InvalidAccessToken,
    42001: AccessTokenExpired,
    40029: InvalidCode,
    40163: InvalidCode,
    # Face verification: the verify_result is unknown or expired (an unusable "code" as well).
    84001: InvalidCode,
    40013: InvalidCredential,
    40125: InvalidCredential,
    40164: InvalidCredential,
    45011: FrequencyLimited,
}

TOKEN_ERRORS = (InvalidAccessToken, AccessTokenExpired)
"""Errors after which a fresh token may succeed, so token-using calls retry once."""


def error_for(errcode: int, errmsg: str) -> WeChatError:
    """The typed exception for an ``errcode``."""
    return ERRCODE_TYPES.get(errcode, OtherWeChatError)(errcode, errmsg)
