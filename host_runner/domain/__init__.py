"""host_runner.domain."""
