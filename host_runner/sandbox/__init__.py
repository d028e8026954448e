"""host_runner.sandbox."""
