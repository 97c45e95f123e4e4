"""Settings read once from the environment, typed and validated.

Every bad value becomes one line of :class:`SettingsError`, so an operator sees all of them at once
instead of fixing one per restart.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from auth.pii import CIPHERS
from auth.staff import MIN_PASSWORD_LENGTH as MIN_STAFF_PASSWORD_LENGTH

Environment = Literal["dev", "production"]
PiiCipher = Literal["aes-256-gcm", "sm4-gcm"]
GuideQr = Literal["local", "wxacode"]

PII_KEY_BYTES: dict[str, int] = {name: cipher.key_bytes for name, cipher in CIPHERS.items()}
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "asyncpg")
REDIS_SCHEMES = ("memory", "redis", "rediss", "unix")
SIMULATOR_PREFIX = "/_sim"

SIM_WECHAT_APPID = "wx-sim-appid"
SIM_WECHAT_SECRET = "wx-sim-secret"  # noqa: S105 - the simulator's well-known dev credential
SIM_WECOM_CORP_ID = "ww-sim-corp"
SIM_WECOM_SECRET = "ww-sim-secret"  # noqa: S105 - the simulator's well-known dev credential
SIM_WECOM_AGENT_ID = 1000002
SIM_WECOM_TOKEN = "sim-callback-token"  # noqa: S105 - the simulator's well-known dev credential
# 43 characters of base64 without padding, as WeCom's EncodingAESKey.
SIM_WECOM_AES_KEY = "c2ltdWxhdG9yLWFlcy1rZXktZm9yLWRldi1tb2RlLTA"
# The demo hall's device secret, published in API.md: production refuses it.
DEMO_DEVICE_SECRET = "suban-demo-device"  # noqa: S105 - the documented demo value


class SettingsError(Exception):
    """One or more settings are wrong; ``lines`` says what, one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True, slots=True)
class PiiKey:
    version: str
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    env: Environment = "dev"
    var_dir: Path = Path("var")
    database_url: str = field(default="sqlite://var/suban.sqlite3", repr=False)
    redis_url: str = field(default="memory://", repr=False)
    redis_max_connections: int = 64
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Proxies in front that append the client's address to X-Forwarded-For (nginx, an Ingress):
    # with 0 the peer address is the client, and a forged header is ignored.
    proxies_count: int = 0
    # Browser origins allowed to call the API cross-origin (exact "https://host[:port]"); none by
    # default: the mini-program is no browser page and the console is served same-origin.
    cors_origins: tuple[str, ...] = ()
    # Seconds a client may take to send a request head (and between any two chunks of it) before
    # the connection is cut: a slow client must not hold a connection slot for long.
    request_timeout: int = 15
    log_level: str = "INFO"
    simulator: bool = True
    pii_cipher: PiiCipher = "aes-256-gcm"
    pii_keys: tuple[PiiKey, ...] = ()
    wechat_appid: str = SIM_WECHAT_APPID
    wechat_secret: str = field(default=SIM_WECHAT_SECRET, repr=False)
    wechat_api_base: str = ""
    wecom_corp_id: str = SIM_WECOM_CORP_ID
    wecom_secret: str = field(default=SIM_WECOM_SECRET, repr=False)
    wecom_agent_id: int = SIM_WECOM_AGENT_ID
    wecom_token: str = field(default=SIM_WECOM_TOKEN, repr=False)
    wecom_aes_key: str = field(default=SIM_WECOM_AES_KEY, repr=False)
    wecom_api_base: str = ""
    wecom_max_skew: int = 300
    wechat_timeout: float = 5.0
    session_ttl: int = 7200
    # Staff sessions reach every taxpayer's filings: a shorter idle time, and an end after a
    # working day however busy the session was.
    staff_session_ttl: int = 1800
    staff_session_max_age: int = 8 * 3600
    demo_staff_password: str = field(default="suban-demo", repr=False)
    demo_device_secret: str = field(default=DEMO_DEVICE_SECRET, repr=False)
    # Hall (issue 6). Camera snapshots, content-addressed outside static/; None: var/snapshots.
    snapshot_dir: Path | None = None
    snapshot_retention_hours: int = 24
    # Crowd level of the live status: 适中 from the first number, 较多 from the second, judged
    # on people counted by the cameras and on people waiting per open window (the higher wins).
    hall_crowd_people_medium: int = 30
    hall_crowd_people_high: int = 80
    hall_crowd_waiting_medium: int = 3
    hall_crowd_waiting_high: int = 8
    # Open windows of the live status; 0: the windows that called a ticket in the last 30 min.
    hall_windows_open: int = 0
    # Comfort index: the quantiles of a month's predicted arrivals per slot that separate 较少 /
    # 适中 / 较多 (tertiles by default); and how many years of synthetic queue history the demo
    # loads (API.md, "Demo data": three; 0 loads none).
    comfort_level_quantiles: tuple[float, float] = (1 / 3, 2 / 3)
    demo_history_years: int = 3
    # Filing (issue 4). Attachments live outside static/, content-addressed; None: var/attachments.
    attachment_dir: Path | None = None
    attachment_max_bytes: int = 10 * 1024 * 1024
    # A TrueType CJK font embedded (subset) in receipts; STSong-Light (not embedded) without it.
    receipt_font: Path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    # Where people open the service in a browser: receipts' QR codes point at its progress page.
    public_url: str = ""
    # Whether the bureau collects individual income tax at issue of a proxy invoice (local
    # practice, DOMAIN.md): off unless the bureau says so.
    iit_at_issue: bool = False
    subscribe_template_status: str = "sim-tmpl-status"
    # Hall appointments (issue 6): the subscribe messages of a staff invitation and of the
    # reminder the day before, and how long after its slot ended a booking that was never
    # checked in becomes a no-show (the queue system may report the check-in late).
    subscribe_template_invitation: str = "sim-tmpl-invitation"
    subscribe_template_reminder: str = "sim-tmpl-reminder"
    no_show_grace_minutes: int = 30
    # Public progress lookups per client address per 10 minutes. Mobile carriers put many people
    # behind one address, so this is generous; guessing is stopped by the per-number limit.
    progress_ip_limit: int = 300
    # The WeCom OA template of an enterprise's internal approval of a filing (issue 5).
    wecom_approval_template: str = "sim-approval-template"
    # How guide QR codes are made: "local" draws a plain QR code (segno), "wxacode" asks WeChat
    # for a mini-program code (getwxacodeunlimit). Default: local with the simulator on.
    guide_qr: GuideQr = "local"
    # Retention (PIPL art. 19), in days; the purge_expired job removes what is past them.
    # Submissions and their timelines are tax records kept ten years and never purged (see
    # forms/retention.py). Attachments of ended submissions: the decision and the filed data
    # stay with the submission, the supporting copies (contracts, ID scans) were needed to decide
    # and to answer a challenge of the decision, which must come within 60 days (行政复议法
    # 第二十条) or six months (行政诉讼法 第四十六条): a year covers both with a margin.
    retention_attachment_days: int = 365
    # A draft untouched for a quarter has missed the filing period it was begun for.
    retention_draft_days: int = 90
    # Unfinished verifications (a pending phone, a claim awaiting the counter): a month.
    retention_verification_days: int = 30
    # Sent outbox messages (payloads can name people): long enough to answer "was I told?".
    retention_outbox_days: int = 30

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url.startswith("memory://")

    @property
    def database_kind(self) -> Literal["sqlite", "postgres"]:
        return "sqlite" if self.database_url.startswith("sqlite://") else "postgres"

    @property
    def public_base(self) -> str:
        """Where this service answers on loopback, for calling its own mounted simulator."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``SUBAN_*`` variables; raise :class:`SettingsError` listing every bad one."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        d = cls()

        mode = reader.choice("SUBAN_ENV", ("dev", "production"), d.env)
        var_dir = Path(reader.text("SUBAN_VAR_DIR", str(d.var_dir)))
        database_url = reader.url(
            "SUBAN_DATABASE_URL", f"sqlite://{var_dir / 'suban.sqlite3'}", DATABASE_SCHEMES
        )
        redis_url = reader.url("SUBAN_REDIS_URL", d.redis_url, REDIS_SCHEMES)
        host = reader.host("SUBAN_HOST", d.host)
        port = reader.integer("SUBAN_PORT", d.port, 1, 65535)
        workers = reader.integer("SUBAN_WORKERS", d.workers, 1, 64)
        simulator = reader.boolean("SUBAN_SIMULATOR", mode != "production")
        pii_cipher = reader.choice("SUBAN_PII_CIPHER", ("aes-256-gcm", "sm4-gcm"), d.pii_cipher)

        if redis_url.startswith("memory://") and workers > 1:
            reader.fail(
                "SUBAN_REDIS_URL",
                "memory:// keeps Redis inside one process; with SUBAN_WORKERS > 1 use a real Redis",
            )
        if workers > 1 and database_url.startswith("sqlite"):
            # Seen: two workers writing one SQLite file stalled requests for 20 s and more.
            reader.fail(
                "SUBAN_DATABASE_URL",
                "SQLite takes one writer at a time; with SUBAN_WORKERS > 1 use PostgreSQL",
            )
        if (
            simulator
            and workers > 1
            and not (
                reader.text("SUBAN_WECHAT_API_BASE", "") and reader.text("SUBAN_WECOM_API_BASE", "")
            )
        ):
            reader.fail(
                "SUBAN_SIMULATOR",
                "the mounted simulator keeps its state in one process; with SUBAN_WORKERS > 1 run "
                "`python -m wechat.simulator` and point SUBAN_WECHAT_API_BASE and "
                "SUBAN_WECOM_API_BASE at it",
            )
        if simulator and not _is_loopback(host):
            reader.fail(
                "SUBAN_SIMULATOR",
                "the simulator's control API has no login: serve it on a loopback SUBAN_HOST only",
            )
        if mode == "production" and simulator:
            reader.fail("SUBAN_SIMULATOR", "the WeChat simulator must be off in production")
        if mode == "production" and redis_url.startswith("memory://"):
            reader.fail("SUBAN_REDIS_URL", "production needs a real Redis (redis:// or rediss://)")
        if mode == "production" and database_url.startswith("sqlite"):
            reader.fail(
                "SUBAN_DATABASE_URL",
                "production needs PostgreSQL (postgresql://); SQLite is the one-laptop default",
            )

        def secret(name: str, default: str) -> str:
            # With the simulator on, the simulator's own credentials are the defaults; against the
            # real Tencent APIs every credential must be given.
            if simulator:
                return reader.text(name, default)
            return reader.required(name)

        pii_keys = reader.pii_keys("SUBAN_PII_KEYS", pii_cipher)
        if mode == "production" and any(k.key in _dev_pii_keys(var_dir) for k in pii_keys):
            # A key generated on a laptop has lived in a plain file there and in its backups.
            reader.fail("SUBAN_PII_KEYS", "a generated development key is not a production key")
        if not pii_keys and not reader.has_errors_for("SUBAN_PII_KEYS"):
            if mode == "production":
                reader.fail("SUBAN_PII_KEYS", "required in production (v1:<base64>,v2:<base64>)")
            elif not reader.has_errors_for("SUBAN_PII_CIPHER"):
                try:
                    pii_keys = (load_or_create_dev_pii_key(var_dir, pii_cipher),)
                except ValueError as exc:
                    reader.fail("SUBAN_VAR_DIR", str(exc))
                except OSError as exc:
                    reader.fail("SUBAN_VAR_DIR", f"cannot keep the dev PII key there ({exc})")

        settings = cls(
            env=mode,  # type: ignore[arg-type]
            var_dir=var_dir,
            database_url=database_url,
            redis_url=redis_url,
            redis_max_connections=reader.integer(
                "SUBAN_REDIS_MAX_CONNECTIONS", d.redis_max_connections, 2, 10_000
            ),
            host=host,
            port=port,
            workers=workers,
            proxies_count=reader.integer("SUBAN_PROXIES_COUNT", d.proxies_count, 0, 10),
            cors_origins=reader.origins("SUBAN_CORS_ORIGINS"),
            request_timeout=reader.integer("SUBAN_REQUEST_TIMEOUT", d.request_timeout, 1, 300),
            log_level=reader.choice(
                "SUBAN_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), d.log_level, upper=True
            ),
            simulator=simulator,
            pii_cipher=pii_cipher,  # type: ignore[arg-type]
            pii_keys=pii_keys,
            wechat_appid=secret("SUBAN_WECHAT_APPID", SIM_WECHAT_APPID),
            wechat_secret=secret("SUBAN_WECHAT_SECRET", SIM_WECHAT_SECRET),
            wechat_api_base=reader.url("SUBAN_WECHAT_API_BASE", "", ("http", "https")),
            wecom_corp_id=secret("SUBAN_WECOM_CORP_ID", SIM_WECOM_CORP_ID),
            wecom_secret=secret("SUBAN_WECOM_SECRET", SIM_WECOM_SECRET),
            wecom_agent_id=reader.integer(
                "SUBAN_WECOM_AGENT_ID",
                d.wecom_agent_id if simulator else int(secret("SUBAN_WECOM_AGENT_ID", "0") or 0),
                1,
                2**31 - 1,
            ),
            wecom_token=secret("SUBAN_WECOM_TOKEN", SIM_WECOM_TOKEN),
            wecom_aes_key=reader.aes_key("SUBAN_WECOM_AES_KEY", secret, SIM_WECOM_AES_KEY),
            wecom_api_base=reader.url("SUBAN_WECOM_API_BASE", "", ("http", "https")),
            wecom_max_skew=reader.integer("SUBAN_WECOM_MAX_SKEW", d.wecom_max_skew, 0, 86_400),
            wechat_timeout=reader.number("SUBAN_WECHAT_TIMEOUT", d.wechat_timeout, 0.1, 60.0),
            session_ttl=reader.integer("SUBAN_SESSION_TTL", d.session_ttl, 60, 30 * 86_400),
            staff_session_ttl=reader.integer(
                "SUBAN_STAFF_SESSION_TTL", d.staff_session_ttl, 60, 86_400
            ),
            staff_session_max_age=reader.integer(
                "SUBAN_STAFF_SESSION_MAX_AGE", d.staff_session_max_age, 300, 7 * 86_400
            ),
            demo_staff_password=reader.text("SUBAN_DEMO_STAFF_PASSWORD", d.demo_staff_password),
            # Production has no demo devices unless given a secret of its own.
            demo_device_secret=reader.text(
                "SUBAN_DEMO_DEVICE_SECRET", "" if mode == "production" else d.demo_device_secret
            ),
            snapshot_dir=Path(reader.text("SUBAN_SNAPSHOT_DIR", str(var_dir / "snapshots"))),
            snapshot_retention_hours=reader.integer(
                "SUBAN_SNAPSHOT_RETENTION_HOURS", d.snapshot_retention_hours, 1, 24 * 90
            ),
            hall_crowd_people_medium=reader.integer(
                "SUBAN_HALL_CROWD_PEOPLE_MEDIUM", d.hall_crowd_people_medium, 1, 100_000
            ),
            hall_crowd_people_high=reader.integer(
                "SUBAN_HALL_CROWD_PEOPLE_HIGH", d.hall_crowd_people_high, 1, 100_000
            ),
            hall_crowd_waiting_medium=reader.integer(
                "SUBAN_HALL_CROWD_WAITING_MEDIUM", d.hall_crowd_waiting_medium, 1, 10_000
            ),
            hall_crowd_waiting_high=reader.integer(
                "SUBAN_HALL_CROWD_WAITING_HIGH", d.hall_crowd_waiting_high, 1, 10_000
            ),
            hall_windows_open=reader.integer(
                "SUBAN_HALL_WINDOWS_OPEN", d.hall_windows_open, 0, 500
            ),
            attachment_dir=Path(reader.text("SUBAN_ATTACHMENT_DIR", str(var_dir / "attachments"))),
            attachment_max_bytes=reader.integer(
                "SUBAN_ATTACHMENT_MAX_BYTES", d.attachment_max_bytes, 1024, 100 * 1024 * 1024
            ),
            receipt_font=Path(reader.text("SUBAN_RECEIPT_FONT", str(d.receipt_font))),
            public_url=reader.url("SUBAN_PUBLIC_URL", "", ("http", "https")),
            iit_at_issue=reader.boolean("SUBAN_IIT_AT_ISSUE", d.iit_at_issue),
            subscribe_template_status=reader.text(
                "SUBAN_SUBSCRIBE_TEMPLATE_STATUS", d.subscribe_template_status
            ),
            subscribe_template_invitation=reader.text(
                "SUBAN_SUBSCRIBE_TEMPLATE_INVITATION", d.subscribe_template_invitation
            ),
            subscribe_template_reminder=reader.text(
                "SUBAN_SUBSCRIBE_TEMPLATE_REMINDER", d.subscribe_template_reminder
            ),
            no_show_grace_minutes=reader.integer(
                "SUBAN_NO_SHOW_GRACE_MINUTES", d.no_show_grace_minutes, 0, 24 * 60
            ),
            wecom_approval_template=reader.text(
                "SUBAN_WECOM_APPROVAL_TEMPLATE", d.wecom_approval_template
            ),
            guide_qr=reader.choice(  # type: ignore[arg-type]
                "SUBAN_GUIDE_QR", ("local", "wxacode"), "local" if simulator else "wxacode"
            ),
            progress_ip_limit=reader.integer(
                "SUBAN_PROGRESS_IP_LIMIT", d.progress_ip_limit, 1, 10_000_000
            ),
            retention_attachment_days=reader.integer(
                "SUBAN_RETENTION_ATTACHMENT_DAYS", d.retention_attachment_days, 1, 3660
            ),
            retention_draft_days=reader.integer(
                "SUBAN_RETENTION_DRAFT_DAYS", d.retention_draft_days, 1, 3660
            ),
            retention_verification_days=reader.integer(
                "SUBAN_RETENTION_VERIFICATION_DAYS", d.retention_verification_days, 1, 366
            ),
            retention_outbox_days=reader.integer(
                "SUBAN_RETENTION_OUTBOX_DAYS", d.retention_outbox_days, 1, 3660
            ),
            comfort_level_quantiles=reader.quantile_pair(
                "SUBAN_COMFORT_LEVEL_QUANTILES", d.comfort_level_quantiles
            ),
            demo_history_years=reader.integer(
                "SUBAN_DEMO_HISTORY_YEARS", d.demo_history_years, 0, 5
            ),
        )
        if len(settings.demo_staff_password) < MIN_STAFF_PASSWORD_LENGTH:
            reader.fail(
                "SUBAN_DEMO_STAFF_PASSWORD",
                f"must be at least {MIN_STAFF_PASSWORD_LENGTH} characters",
            )
        if mode == "production":
            # The simulator's credentials are published in this repository.
            for name, value, simulated in (
                ("SUBAN_WECHAT_SECRET", settings.wechat_secret, SIM_WECHAT_SECRET),
                ("SUBAN_WECOM_SECRET", settings.wecom_secret, SIM_WECOM_SECRET),
                ("SUBAN_WECOM_TOKEN", settings.wecom_token, SIM_WECOM_TOKEN),
                ("SUBAN_WECOM_AES_KEY", settings.wecom_aes_key, SIM_WECOM_AES_KEY),
            ):
                if value == simulated:
                    reader.fail(name, "the simulator's credential is not a production secret")
        if mode == "production" and settings.demo_device_secret == DEMO_DEVICE_SECRET:
            reader.fail("SUBAN_DEMO_DEVICE_SECRET", "the demo device secret is published in API.md")
        if settings.demo_device_secret and len(settings.demo_device_secret) < 16:
            reader.fail("SUBAN_DEMO_DEVICE_SECRET", "must be at least 16 characters")
        if settings.hall_crowd_people_medium >= settings.hall_crowd_people_high:
            reader.fail(
                "SUBAN_HALL_CROWD_PEOPLE_HIGH", "must be above SUBAN_HALL_CROWD_PEOPLE_MEDIUM"
            )
        if settings.hall_crowd_waiting_medium >= settings.hall_crowd_waiting_high:
            reader.fail(
                "SUBAN_HALL_CROWD_WAITING_HIGH", "must be above SUBAN_HALL_CROWD_WAITING_MEDIUM"
            )
        reader.raise_if_failed()
        return settings

    @property
    def snapshots_path(self) -> Path:
        return self.snapshot_dir or self.var_dir / "snapshots"

    @property
    def attachments_path(self) -> Path:
        return self.attachment_dir or self.var_dir / "attachments"

    @property
    def public_link_base(self) -> str:
        """The base of links people open (receipt QR codes): SUBAN_PUBLIC_URL, or this server."""
        return (self.public_url or self.public_base).rstrip("/")

    def api_bases(self) -> tuple[str, str]:
        """Base URLs of the mini-program and WeCom APIs, after the simulator and overrides."""
        if self.simulator:
            wechat = self.wechat_api_base or f"{self.public_base}{SIMULATOR_PREFIX}/wechat"
            wecom = self.wecom_api_base or f"{self.public_base}{SIMULATOR_PREFIX}/wecom"
        else:
            wechat = self.wechat_api_base or "https://api.weixin.qq.com"
            wecom = self.wecom_api_base or "https://qyapi.weixin.qq.com"
        return wechat.rstrip("/"), wecom.rstrip("/")


T = TypeVar("T")


class _Reader:
    """Collects one error line per bad variable while returning usable defaults."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: dict[str, str] = {}

    def fail(self, name: str, why: str) -> None:
        self.errors.setdefault(name, why)

    def has_errors_for(self, name: str) -> bool:
        return name in self.errors

    def raise_if_failed(self) -> None:
        if self.errors:
            lines = []
            for name, why in self.errors.items():
                shown = _shown_value(name, self.env.get(name))
                lines.append(f"{name}{shown}: {why}")
            raise SettingsError(lines)

    def _get(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], why: str) -> T:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.fail(name, why)
            return default

    def text(self, name: str, default: str) -> str:
        return self._get(name) or default

    def required(self, name: str) -> str:
        raw = self._get(name)
        if raw is None:
            self.fail(name, "required when SUBAN_SIMULATOR=0")
            return ""
        return raw

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if not low <= value <= high:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"must be a whole number from {low} to {high}")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not low <= value <= high:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"must be a number from {low} to {high}")

    def quantile_pair(self, name: str, default: tuple[float, float]) -> tuple[float, float]:
        def parse(raw: str) -> tuple[float, float]:
            low, high = (float(part) for part in raw.split(","))
            if not 0 < low < high < 1:
                raise ValueError
            return low, high

        return self._parse(
            name, default, parse, "must be two numbers between 0 and 1, ascending: 0.3333,0.6667"
        )

    def boolean(self, name: str, default: bool) -> bool:
        table = {"1": True, "true": True, "yes": True, "on": True}
        table |= {"0": False, "false": False, "no": False, "off": False}

        def parse(raw: str) -> bool:
            if raw.lower() not in table:
                raise ValueError
            return table[raw.lower()]

        return self._parse(name, default, parse, "must be 1 or 0 (true/false, yes/no, on/off)")

    def choice(self, name: str, options: tuple[str, ...], default: str, upper: bool = False) -> str:
        def parse(raw: str) -> str:
            value = raw.upper() if upper else raw.lower()
            if value not in options:
                raise ValueError
            return value

        return self._parse(name, default, parse, f"must be one of {', '.join(options)}")

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        raw = self._get(name)
        if raw is None:
            return default
        why = _url_problem(raw, schemes)
        if why:
            self.fail(name, why)
            return default
        return raw

    def origins(self, name: str) -> tuple[str, ...]:
        """Comma-separated browser origins: scheme http(s), a host, maybe a port, no path."""
        raw = self._get(name)
        if raw is None:
            return ()
        found: list[str] = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            match = _ORIGIN.fullmatch(part)
            if not match or not 1 <= int(match[3][1:] if match[3] else 80) <= 65535:
                self.fail(name, f"{part!r} is not an origin like https://example.cn[:port]")
                return ()
            found.append(part.lower())
        return tuple(dict.fromkeys(found))

    def host(self, name: str, default: str) -> str:
        raw = self._get(name)
        if raw is None:
            return default
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            if not _HOSTNAME.fullmatch(raw):
                self.fail(name, "must be an IP address or a host name")
                return default
        return raw

    def pii_keys(self, name: str, cipher: str) -> tuple[PiiKey, ...]:
        raw = self._get(name)
        if raw is None:
            return ()
        size = PII_KEY_BYTES.get(cipher, 32)
        keys: list[PiiKey] = []
        for part in raw.split(","):
            version, sep, encoded = part.strip().partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not sep or not version or len(key) != size:
                self.fail(name, f"must be v1:<base64 of {size} bytes>,v2:<...> for {cipher}")
                return ()
            if any(k.version == version for k in keys):
                self.fail(name, f"key version {version} appears twice")
                return ()
            keys.append(PiiKey(version, key))
        return tuple(keys)

    def aes_key(self, name: str, secret: Callable[[str, str], str], default: str) -> str:
        value = secret(name, default)
        if value and len(value) != 43:
            self.fail(name, "must be WeCom's 43-character EncodingAESKey")
            return default
        if value:
            try:
                base64.b64decode(value + "=", validate=True)
            except (binascii.Error, ValueError):
                self.fail(name, "must be WeCom's 43-character EncodingAESKey (base64)")
                return default
        return value


_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
# An origin as browsers send it: scheme, host (name, IPv4 or [IPv6]), maybe a port; nothing else.
_ORIGIN = re.compile(
    r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(:[0-9]{1,5})?"
)
_NEEDS_HOST = ("http", "https", "redis", "rediss", "postgres", "postgresql", "asyncpg")


def _url_problem(raw: str, schemes: tuple[str, ...]) -> str | None:
    """What is wrong with a URL setting, in words; None when it is usable."""
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        return "must be a URL starting with " + ", ".join(f"{s}://" for s in schemes)
    if parts.scheme in _NEEDS_HOST and not parts.hostname:
        return "names no host"
    try:
        port = parts.port
    except ValueError:
        return "its port must be a whole number from 1 to 65535"
    if port is not None and not 1 <= port <= 65535:
        return "its port must be a whole number from 1 to 65535"
    if parts.scheme in ("postgres", "postgresql", "asyncpg") and not parts.path.strip("/"):
        return "names no database"
    if (
        parts.scheme in ("redis", "rediss")
        and parts.path.strip("/")
        and not (parts.path.strip("/").isdigit())
    ):
        return "its Redis database must be a number (redis://host:6379/0)"
    if parts.scheme in ("sqlite", "unix") and not (parts.netloc + parts.path):
        return "names no file"
    return None


_SECRET_NAMES = ("SECRET", "KEY", "TOKEN", "PASSWORD")


def _shown_value(name: str, value: str | None) -> str:
    if value is None:
        return ""
    if any(word in name for word in _SECRET_NAMES):
        return "=<hidden>"
    if "://" in value:
        # A URL can carry a password in its user part or its query: show neither.
        parts = urlsplit(value)
        host = parts.netloc.rpartition("@")[2]
        hidden = "<hidden>@" if "@" in parts.netloc else ""
        query = "?<hidden>" if parts.query else ""
        return f"={parts.scheme}://{hidden}{host}{parts.path}{query}"
    return f"={value}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dev_pii_keys(var_dir: Path) -> set[bytes]:
    """The keys the embedded default generated into this var dir, of any cipher."""
    found: set[bytes] = set()
    for path in var_dir.glob("pii-key.*"):
        try:
            found.add(base64.b64decode(path.read_text(encoding="ascii").partition(":")[2].strip()))
        except (OSError, UnicodeDecodeError, binascii.Error, ValueError):
            continue
    return found


def load_or_create_dev_pii_key(var_dir: Path, cipher: str) -> PiiKey:
    """The embedded default's PII key: generated once into ``var/``, never committed."""
    path = var_dir / f"pii-key.{cipher}"
    if path.exists():
        try:
            version, sep, encoded = path.read_text(encoding="ascii").strip().partition(":")
            key = base64.b64decode(encoded, validate=True)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            key, sep = b"", ""
        if not sep or not version or len(key) != PII_KEY_BYTES[cipher]:
            # Never replace it: data sealed under the old key would be lost with it.
            raise ValueError(f"{path} is damaged (expected v1:<base64 of a {cipher} key>)")
        return PiiKey(version, key)
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(PII_KEY_BYTES[cipher])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"v1:{base64.b64encode(key).decode('ascii')}\n", encoding="ascii")
    tmp.chmod(0o600)
    tmp.replace(path)
    return PiiKey("v1", key)
