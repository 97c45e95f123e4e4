"""WeCom bridge: callbacks, member login and binding, approvals, app messages."""
