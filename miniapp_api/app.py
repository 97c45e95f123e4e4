"""The application factory: one ``setup_*`` per feature, resources opened in listeners."""

from __future__ import annotations

import functools

import ujson
from sanic import Sanic
from sanic.config import Config

from auth import audit
from auth.pii import Keyring
from miniapp_api import metrics, ops
from miniapp_api.context import AppContext, SubanApp
from miniapp_api.cors import setup_cors
from miniapp_api.database import setup_database
from miniapp_api.errors import ContractErrorHandler
from miniapp_api.hall_setup import setup_hall
from miniapp_api.jobs import setup_jobs
from miniapp_api.logging_setup import configure_logging, install_request_id_factory
from miniapp_api.pages import setup_pages
from miniapp_api.redis_setup import setup_redis
from miniapp_api.request_context import setup_request_context
from miniapp_api.routes import api_group
from miniapp_api.sessions_setup import setup_sessions
from miniapp_api.settings import Settings
from miniapp_api.wechat_setup import setup_simulator, setup_wechat
from miniapp_api.wecom_setup import setup_wecom

# Chinese in answers stays readable (and shorter) instead of \u escapes.
_dumps = functools.partial(ujson.dumps, ensure_ascii=False, escape_forward_slashes=False)

API_DESCRIPTION = (
    "速办税：税务局微信小程序与企业微信的后端。错误统一为 "
    '`{"error": {"code", "message", "fields"?}}`。'
)


def create_app(
    settings: Settings | None = None, name: str = "suban", *, configure_logs: bool = True
) -> SubanApp:
    """Build the service. With no settings, read them from the environment.

    ``configure_logs=False`` leaves the process's logging alone (tests capture it themselves).
    """
    settings = settings or Settings.from_env()
    audit.configure(settings.pii_cipher)
    install_request_id_factory()
    if configure_logs:
        configure_logging(settings.production, settings.log_level)
    config = Config()
    config.ACCESS_LOG = not settings.production
    config.FALLBACK_ERROR_FORMAT = "json"
    config.REQUEST_MAX_SIZE = 20 * 1024 * 1024  # attachments; JSON routes check their own limits
    config.KEEP_ALIVE_TIMEOUT = 75  # longer than nginx's upstream keepalive, so it closes first
    # Slow clients: a request head may take this long before the connection is cut with 408; a
    # handler, including one waiting for a stalled body, gets RESPONSE_TIMEOUT (then 503).
    # Sanic restarts both clocks on every chunk received, so a client trickling bytes is cut off
    # only by the proxy in front (deploy/nginx.conf: client_header/body_timeout).
    config.REQUEST_TIMEOUT = settings.request_timeout
    config.RESPONSE_TIMEOUT = 60
    config.PROXIES_COUNT = settings.proxies_count
    app: SubanApp = Sanic(
        name,
        config=config,
        ctx=AppContext(settings=settings, keyring=keyring_from(settings)),
        error_handler=ContractErrorHandler(),
        dumps=_dumps,
        configure_logging=False,
    )
    setup_cors(app, settings)  # before setup_openapi: sanic-ext reads its keys when extended
    setup_openapi(app)
    setup_request_context(app)
    metrics.setup_metrics(app)
    setup_database(app, settings)
    setup_redis(app, settings)
    setup_sessions(app, settings)
    setup_wechat(app, settings)
    setup_jobs(app, settings)
    setup_hall(app, settings)
    if settings.simulator:
        setup_simulator(app, settings)
    app.blueprint(ops.bp)
    app.blueprint(api_group())
    setup_wecom(app, settings)
    setup_pages(app, settings)
    return app


def keyring_from(settings: Settings) -> Keyring:
    return Keyring.build(settings.pii_cipher, [(k.version, k.key) for k in settings.pii_keys])


def setup_openapi(app: SubanApp) -> None:
    app.extend(
        extensions=[],
        config={
            # No CORS unless SUBAN_CORS_ORIGINS lists origins (miniapp_api/cors.py sets these
            # keys on the app's config first, and those win).
            "cors": False,
            "http_auto_options": False,
            "http_auto_trace": False,
            "oas_ui_default": "swagger",
        },
        built_in_extensions=True,
    )
    app.ext.openapi.describe("速办税 API", version="v1", description=API_DESCRIPTION)


def create_app_from_env() -> SubanApp:
    """Entry point for each worker process (``sanic miniapp_api.app:create_app_from_env``)."""
    return create_app(Settings.from_env())
