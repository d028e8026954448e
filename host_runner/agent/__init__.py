"""host_runner.agent."""
