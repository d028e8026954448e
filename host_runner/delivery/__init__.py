"""host_runner.delivery."""
