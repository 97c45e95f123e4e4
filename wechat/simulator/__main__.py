"""``python -m wechat.simulator --host 127.0.0.1 --port 8900``: the simulator as its own server."""

from __future__ import annotations

import argparse
import os

from wechat.simulator.app import create_simulator_app
from wechat.simulator.config import SimulatorConfig


def main(argv: list[str] | None = None) -> None:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(prog="python -m wechat.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--appid", default=defaults.appid)
    parser.add_argument("--corp-id", default=defaults.corp_id)
    parser.add_argument("--agent-id", type=int, default=defaults.agent_id)
    parser.add_argument("--token-ttl", type=int, default=defaults.token_ttl)
    parser.add_argument("--ticket-ttl", type=int, default=defaults.ticket_ttl)
    parser.add_argument("--callback-url", default=None)
    args = parser.parse_args(argv)
    # Secrets come from the environment so they do not show in the process list.
    config = SimulatorConfig(
        appid=args.appid,
        secret=os.environ.get("SIM_WECHAT_SECRET", defaults.secret),
        corp_id=args.corp_id,
        corp_secret=os.environ.get("SIM_WECOM_SECRET", defaults.corp_secret),
        agent_id=args.agent_id,
        callback_url=args.callback_url,
        callback_token=os.environ.get("SIM_CALLBACK_TOKEN"),
        callback_aes_key=os.environ.get("SIM_CALLBACK_AES_KEY"),
        token_ttl=args.token_ttl,
        ticket_ttl=args.ticket_ttl,
    )
    app = create_simulator_app(config)
    # A burst of hundreds of connections must not overflow the listen queue (Sanic's default
    # backlog is 100), or clients see SYN retries as multi-second stalls.
    app.run(
        host=args.host,
        port=args.port,
        single_process=True,
        access_log=False,
        motd=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
