from __future__ import annotations

import pytest

from wechat import (
    AccessTokenExpired,
    FrequencyLimited,
    InvalidAccessToken,
    InvalidCode,
    InvalidCredential,
    OtherWeChatError,
    SystemBusy,
    WeChatError,
    WeChatUnavailable,
)
from wechat.errors import error_for


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        (40029, InvalidCode),
        (40163, InvalidCode),
        (40001, InvalidAccessToken),
        (40014, InvalidAccessToken),
        (42001, AccessTokenExpired),
        (45011, FrequencyLimited),
        (-1, SystemBusy),
        (40013, InvalidCredential),
        (40125, InvalidCredential),
        (84001, InvalidCode),
        (99999, OtherWeChatError),
    ],
)
def test_errcode_selects_the_typed_error(errcode: int, expected: type[WeChatError]) -> None:
    error = error_for(errcode, "message")
    assert type(error) is expected
    assert isinstance(error, WeChatError)
    assert (error.errcode, error.errmsg) == (errcode, "message")
    assert str(errcode) in str(error)


def test_unavailable_is_not_an_errcode_error() -> None:
    assert not issubclass(WeChatUnavailable, WeChatError)
