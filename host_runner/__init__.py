"""host-runner: runs coding agents and commands on the host for orchestrators that live elsewhere."""
