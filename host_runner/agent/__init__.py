"""The agent-runner protocol: the agent's stdin object, IPC inbox and run log (protocol), the framed results it
prints (frames), and the thread that follows its output file (follower).

May import: host_runner.domain, host_runner.ops, host_runner.run.
"""

from __future__ import annotations

from host_runner.agent.follower import OutputFollower
from host_runner.agent.frames import Frame, FrameEvent, FrameParser
from host_runner.agent.protocol import AgentFiles, IpcInbox, RunSummary, prepare_agent_spec, write_run_log

__all__ = [
    "OutputFollower", "Frame", "FrameEvent", "FrameParser", "AgentFiles", "IpcInbox", "RunSummary",
    "prepare_agent_spec", "write_run_log",
]
