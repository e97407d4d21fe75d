"""Watcher: tails the desks change stream into the event log (see issue 3)."""
