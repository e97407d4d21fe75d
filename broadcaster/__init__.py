"""Broadcaster: fans events out to WebSocket clients (see issue 3)."""
