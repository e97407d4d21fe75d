"""The composition root: the `desks` command and `desks up`, standing above the components.

`cli` parses the command line and runs one component per process (`desks api`, `desks
watcher`, `desks broadcaster`) or all of them in one (`desks up`, built by `system`). Nothing
below this package imports it.
"""
