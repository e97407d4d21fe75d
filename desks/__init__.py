"""desks: shared settings, event contract, store access and the `desks` command."""

__version__ = "0.1.0"
