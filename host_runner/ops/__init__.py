"""host_runner.ops."""
