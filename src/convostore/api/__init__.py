"""The HTTP layer: a small ASGI application with thin handlers."""
