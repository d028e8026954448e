"""host_runner.run."""
