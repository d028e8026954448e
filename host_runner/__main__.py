"""``python -m host_runner``: the command-line interface (see host_runner.cli)."""

from host_runner.cli import run

if __name__ == "__main__":
    run()
