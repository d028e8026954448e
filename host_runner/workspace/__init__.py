"""host_runner.workspace."""
