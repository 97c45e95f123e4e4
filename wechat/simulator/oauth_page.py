"""The simulator's stand-in for WeCom's OAuth authorize page, so a person can log in through the
real redirect flow in dev mode: WeCom would identify the member itself; here the member types a
userid, and the page redirects to ``redirect_uri`` with ``code=sim:<userid>`` and the ``state``,
a code the simulated ``getuserinfo`` answers with that userid.

Everything from the query ends up in HTML or in a Location header, so each value is escaped, the
redirect target must be an absolute http(s) URL (no ``javascript:`` or scheme-relative target),
and the userid is held to WeCom's own alphabet.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlencode, urlsplit, urlunsplit

from sanic import Request
from sanic.response import HTTPResponse, redirect
from sanic.response import html as html_response

from wechat.simulator.config import SimulatorConfig

# WeCom userids: letters, digits and "_-.@", at most 64 characters.
USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# The query fields WeCom's page takes, carried through the form unchanged.
PASSED_THROUGH = ("appid", "redirect_uri", "response_type", "scope", "agentid", "state")
MAX_REDIRECT_LENGTH = 2048

_HEADERS = {
    "Cache-Control": "no-store",
    # No script, no frames, nothing loaded: the page is a form and a line of text.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def authorize_page(request: Request, config: SimulatorConfig) -> HTTPResponse:
    """The form (no ``userid`` yet), an error page, or the redirect back with the code."""
    args = {name: request.args.get(name) or "" for name in PASSED_THROUGH}
    if args["appid"] != config.corp_id:
        return _page("appid 与模拟器的 corpid 不符", args, status=400, form=False)
    if not valid_redirect_uri(args["redirect_uri"]):
        return _page("redirect_uri 必须是 http(s) 的绝对地址", args, status=400, form=False)
    userid = request.args.get("userid")
    if userid is None:
        return _page(None, args)
    if not USERID.fullmatch(userid):
        return _page("userid 只能由字母、数字和 _-.@ 组成，最长 64 个字符", args, status=400)
    return redirect(callback_location(args["redirect_uri"], f"sim:{userid}", args["state"]))


def valid_redirect_uri(value: str) -> bool:
    if not value or len(value) > MAX_REDIRECT_LENGTH:
        return False
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value) or "\\" in value:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def callback_location(redirect_uri: str, code: str, state: str) -> str:
    """``redirect_uri`` with ``code`` and ``state`` added to its query, as WeCom redirects."""
    parts = urlsplit(redirect_uri)
    added = urlencode({"code": code, "state": state})
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _page(
    error: str | None, args: dict[str, str], *, status: int = 200, form: bool = True
) -> HTTPResponse:
    esc = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>企业微信登录（模拟器）</title>",
        "<style>body{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}"
        "label,input,button{display:block;margin:.5em 0}.error{color:#b00}</style>",
        "</head><body>",
        "<h1>企业微信登录（模拟器）</h1>",
    ]
    if error is not None:
        parts.append(f'<p class="error">{esc(error)}</p>')
    if form:
        parts.append(f"<p>登录后回到：<code>{esc(args['redirect_uri'])}</code></p>")
        parts.append('<form method="get">')
        for name in PASSED_THROUGH:
            parts.append(f'<input type="hidden" name="{name}" value="{esc(args[name])}">')
        parts.append('<label for="userid">成员 userid</label>')
        parts.append(
            '<input id="userid" name="userid" required maxlength="64" '
            'pattern="[A-Za-z0-9_.@\\-]{1,64}" autofocus>'
        )
        parts.append('<button type="submit">以该成员登录</button></form>')
    parts.append("</body></html>")
    return html_response("\n".join(parts), status=status, headers=_HEADERS)
