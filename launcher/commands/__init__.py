"""The `desks` subcommands, one module each: `run(settings, args)` returns the exit status."""
