"""Talking to Tencent: async WeChat mini-program and WeCom clients, token cache, simulator.

This package imports nothing else of the project; the simulator (``wechat.simulator``) is the only
part that imports Sanic.
"""

from wechat.errors import (
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
from wechat.miniprogram import (
    MINIPROGRAM_API_BASE,
    FaceVerifyResult,
    LoginSession,
    MiniProgramClient,
    PhoneNumber,
    face_digest,
)
from wechat.tokens import FetchedToken, RedisTokenStore, TokenKey, TokenStore
from wechat.transport import RetryPolicy, Transport
from wechat.wecom import WECOM_API_BASE, SendResult, WeComClient, WeComIdentity

__all__ = [
    "MINIPROGRAM_API_BASE",
    "WECOM_API_BASE",
    "AccessTokenExpired",
    "FaceVerifyResult",
    "FetchedToken",
    "FrequencyLimited",
    "InvalidAccessToken",
    "InvalidCode",
    "InvalidCredential",
    "LoginSession",
    "MiniProgramClient",
    "OtherWeChatError",
    "PhoneNumber",
    "RedisTokenStore",
    "RetryPolicy",
    "SendResult",
    "SystemBusy",
    "TokenKey",
    "TokenStore",
    "Transport",
    "WeChatError",
    "WeChatUnavailable",
    "WeComClient",
    "WeComIdentity",
    "face_digest",
]
