"""host_runner.store."""
