"""The pykka actors and the actor system's public face.

- ``system``: starts the store, the reactor and the long-lived actors in a fixed order, stops them in reverse.
- ``service``: **RunnerService**, the typed facade the HTTP API calls (submit, get, list, cancel, message, close,
  logs, describe, stats); the only way in from outside the actors.
- ``supervisor``: **SupervisorActor** (the queue, admission, recovery at start, the agent group queue);
  ``task_views``: how it shows tasks to reads (queue positions, live output tails).
- ``task`` (+ ``task_messages``): one **TaskActor** per run (start, watch, cancel, timeout, end), composed with a
  session: ``run_session`` (the default; ``Phase``, ``TaskServices``) or ``agent_session`` (**AgentSession**:
  frames, messages, idle close; its actor is **AgentTaskActor**); ``lock_verdict``: a shared-workspace run's lock
  check at its end (asking the registry from the ending helper) and what it does to the run's status.
- ``preparing``: the "preparing" marker a run persists before its workspace is made, and the clean-up at start
  of what a stopped runner left half-made.
- ``journal``: **Journal**, commits a transition with its callback events, then tells its listeners.
- ``callback_sender``: **CallbackActor**, delivers the outbox (per-run order, lanes per receiver).
- ``retention``: **RetentionActor**, removes finished runs beyond the retention bounds (rows, events, directories).
- ``worktree_registry``: **WorktreeRegistryActor**, the owner of every reservation (lock paths, worktrees, branches).
- ``base``: the actors' base class (explicit ``@handles`` dispatch, a raising ``tell`` never kills an actor);
  ``messages``: what the actors say to each other; ``introspection``: /debug/actors and thread stacks.

May import: every package of host_runner; never api. This ``__init__`` imports nothing (importing one actor module
does not start or load the others).
"""

__all__ = [
    "agent_session", "base", "callback_sender", "introspection", "journal", "lock_verdict", "messages", "preparing",
    "retention",
    "run_session", "service", "supervisor", "system", "task", "task_messages", "task_views", "worktree_registry",
]
