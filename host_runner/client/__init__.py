"""host_runner.client."""
