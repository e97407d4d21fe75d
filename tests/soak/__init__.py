"""A soak harness, Jepsen-style: writers in several processes, every process killed, an oracle."""
