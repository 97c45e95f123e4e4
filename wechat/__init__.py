"""Talking to Tencent: async WeChat mini-program and WeCom clients, token cache, simulator."""
