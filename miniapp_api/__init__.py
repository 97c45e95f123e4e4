"""The 速办税 service: app factory, settings, routes, CLI."""

from miniapp_api.app import create_app

__all__ = ["create_app"]
