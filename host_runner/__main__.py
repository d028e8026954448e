"""``python -m host_runner``: the command-line interface (see host_runner.client.cli)."""

from host_runner.client.cli import run

if __name__ == "__main__":
    run()
