"""Settings: every ``HOST_RUNNER_*`` environment variable, read once into a typed, validated :class:`Config`.

A bad value raises :class:`ConfigError` whose message names the variable, so the service refuses to start
instead of misbehaving later.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from host_runner.domain.callback_hosts import HostAllowlist, parse_allowed_hosts
from host_runner.domain.names import DEFAULT_EXECUTOR, EXECUTORS
from host_runner.domain.limits import (
    MAX_CPUS, MAX_PIDS, CgroupRequest, CgroupTree, TaskLimits, cgroup_name, parse_size,
)
from host_runner.domain.request import SubmitRules
from host_runner.domain.seams import executor_rules
from host_runner.ops.api_token import token_from_environment
from host_runner.ops.setting_parsers import (
    ConfigError, ExtraDir, absolute_paths, argv, boolean, byte_count, cgroup_path, executor_names, existing_directory,
    existing_group, extra_dirs, host_names, instance_id, memory_size, network_name, number_in, one_of, read_setting,
    tmpfs_mounts, variable_names,
)

PULL_POLICIES = ("missing", "never", "always")

#: Variables that hold secrets: never passed on to a task's environment, never logged.
SECRET_VARIABLES = ("HOST_RUNNER_API_TOKEN", "HOST_RUNNER_CALLBACK_SECRET")


@dataclass(frozen=True)
class DockerSettings:
    """How docker-sandbox containers run (``HOST_RUNNER_DOCKER_*``). Every hardening switch defaults to on;
    a limit of 0 means none. ``mount_roots`` (``HOST_RUNNER_SANDBOX_MOUNT_ROOTS``), when not empty, are the only
    host directories a sandbox may mount from."""

    binary: str = "docker"
    pull: str = "missing"
    timeout_seconds: float = 300.0
    read_only: bool = True
    tmpfs: tuple[str, ...] = ("/tmp",)
    cap_drop_all: bool = True
    no_new_privileges: bool = True
    network: str = "none"
    pids_limit: int = 256
    memory: str = "2g"
    cpus: float = 2.0
    init: bool = True
    mount_roots: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The runner's settings. Build it with :func:`load_config`; tests may construct it directly."""

    data_dir: Path = Path(".host-runner")
    bind: str = "127.0.0.1:8765"
    executor: str = DEFAULT_EXECUTOR
    cmd_template: tuple[str, ...] | None = None
    #: None: the codex executor's own default (host_runner/executors/codex.py).
    codex_bin: str | None = None
    codex_args: tuple[str, ...] = ()
    #: ``codex exec --json``: its events are parsed into the record (HOST_RUNNER_CODEX_JSON=false: plain mode).
    codex_json: bool = True
    #: None: the claude executor's own default (host_runner/executors/claude.py).
    claude_bin: str | None = None
    claude_args: tuple[str, ...] = ()
    max_concurrency: int = 8
    kill_grace_seconds: float = 5.0
    default_timeout_seconds: float = 600.0
    mock_seconds: float = 0.2
    #: From HOST_RUNNER_API_TOKEN or the file HOST_RUNNER_API_TOKEN_FILE names; kept out of repr like every secret.
    api_token: str | None = field(default=None, repr=False)
    #: Host header names the API answers to besides loopback and the bind address (HOST_RUNNER_ALLOWED_HOSTS).
    allowed_hosts: tuple[str, ...] = ()
    #: The executors a task may name (HOST_RUNNER_ALLOWED_EXECUTORS); empty means only ``executor``.
    allowed_executors: tuple[str, ...] = ()
    #: ``inherit``: tasks get the runner's environment without its secrets; ``minimal``: only the basics
    #: (see host_runner.run.commands.MINIMAL_ENVIRONMENT) and the names in ``task_env_pass``.
    task_env: str = "inherit"
    task_env_pass: tuple[str, ...] = ()
    #: With a unix socket bind: the group allowed to connect (socket 0660); None keeps it 0600 (owner only).
    socket_group: str | None = None
    cleanup_worktree: bool = True
    #: After a shared-workspace run: ``report`` changes outside its lock paths, or ``fail`` a run that made some.
    lock_violation: str = "report"
    shutdown: str = "leave"
    callback_timeout_seconds: float = 5.0
    callback_max_attempts: int = 10
    callback_workers: int = 8
    callback_backoff_seconds: float = 1.0
    callback_backoff_max_seconds: float = 60.0
    #: Signs every callback (HMAC-SHA256) when set; kept out of repr so that logging a Config never shows it.
    callback_secret: str | None = field(default=None, repr=False)
    #: Where callbacks may go (``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS``); None: anywhere
    #: (see host_runner/domain/callback_hosts.py).
    callback_allowed_hosts: HostAllowlist | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    log_prompts: bool = False
    max_log_followers: int = 8
    #: The event stream (GET /events): a comment this often on an idle stream, so proxies and clients see it alive;
    stream_keepalive_seconds: float = 15.0
    #: a client more than this many events behind the newest is sent ``event: overflow`` and disconnected;
    stream_max_behind: int = 10_000
    #: a client that takes no data for this long (its socket buffer full) is cut off, freeing its thread.
    stream_write_timeout_seconds: float = 30.0
    max_queued: int = 1000  # queued tasks at most; a submit beyond is answered 429
    max_output_bytes: int = 2 * 1024**3  # per stream of a run; past it the run is stopped (0: no cap)
    min_free_bytes: int = 1024**3  # below it on the data dir's filesystem, submits are answered 507
    #: How long a connection may take to deliver its request line and headers before gunicorn's worker closes
    #: it (api/gunicorn_worker.py): until then it waits in the worker's poller, not in one of the request threads.
    header_timeout_seconds: float = 10.0
    retention_seconds: float = 604_800.0  # finished runs older than this (7 days) are removed (actors/retention.py)
    retention_max_runs: int = 10_000  # and beyond the newest this many finished runs
    docker: DockerSettings = field(default_factory=DockerSettings)
    #: Labels this runner's containers; None until the actor system reads (or creates) ``<data dir>/instance_id``.
    instance_id: str | None = None
    agent_cmd: tuple[str, ...] | None = None
    agent_idle_seconds: float = 1800.0
    agent_close_grace_seconds: float = 60.0
    #: ``host``: agents see the host's paths; ``container``: each agent task runs in a private mount namespace with
    #: the paths NanoClaw's agent-runner hard-codes (see :mod:`host_runner.run.container_paths`).
    agent_paths: str = "host"
    agent_global_dir: Path | None = None  # /workspace/global (read-only) with container paths
    agent_extra_dirs: tuple[ExtraDir, ...] = ()  # /workspace/extra/<name> (read-only) with container paths
    #: Which wrapper starts task processes: ``native`` (host_runner/run/wrapper.c, built with ``cc`` at start),
    #: ``python`` (host_runner/run/wrapper.py), or ``auto`` (native when a C compiler is there, else python).
    wrapper: str = "auto"
    #: The argv prefix that starts the wrapper; settled at start by
    #: :func:`host_runner.run.wrapper_build.prepare_wrapper`.
    wrapper_argv: tuple[str, ...] | None = None
    #: The most a host task may use (HOST_RUNNER_TASK_MEMORY_MAX bytes, _PIDS_MAX, _CPUS; 0: no limit).
    task_memory_max: int = 0
    task_pids_max: int = 0
    task_cpus: float = 0.0
    #: HOST_RUNNER_CGROUPS: ``auto`` (v2 where it offers what is needed, else v1, else none), ``v2``, ``v1``, ``off``.
    cgroups: str = "auto"
    #: HOST_RUNNER_CGROUP_ROOT: the cgroup (a path as /proc/self/cgroup shows it) under which task cgroups are
    #: made; None: the runner's own cgroup (delegated by systemd's ``Delegate=yes``).
    cgroup_root: str | None = None
    #: Settled at start by :func:`host_runner.limits.prepare_cgroups`: the task cgroups' backend (None: none),
    #: and what /health and the start log say about it.
    cgroup_tree: CgroupTree | None = None
    cgroup_note: str = "cgroups: not set up"

    @property
    def task_limits(self) -> TaskLimits:
        """The operator's maximum limits of one host task."""
        return TaskLimits(self.task_memory_max, self.task_pids_max, self.task_cpus)

    def cgroup_request(self, task_id: str, run_id: str, requested: TaskLimits | None = None) -> CgroupRequest | None:
        """Where a host run's cgroup goes (None: cgroups are unavailable or off), with the limits it runs under."""
        if self.cgroup_tree is None:
            return None
        return CgroupRequest(self.cgroup_tree, cgroup_name(task_id, run_id), self.task_limits.within(requested))

    @property
    def executors_allowed(self) -> tuple[str, ...]:
        """The executors a submission may name: HOST_RUNNER_ALLOWED_EXECUTORS, else the default executor alone."""
        return self.allowed_executors or (self.executor,)

    @property
    def submit_rules(self) -> SubmitRules:
        """What a submission may ask of this runner (see :func:`host_runner.domain.submission.parse_task_request`)."""
        return SubmitRules(
            default_timeout=self.default_timeout_seconds, default_executor=self.executor,
            allowed_executors=self.executors_allowed, sandbox_mount_roots=self.docker.mount_roots,
            sandbox_data_dir=self.data_dir, callback_allowed_hosts=self.callback_allowed_hosts,
            max_limits=self.task_limits,
        )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "host_runner.db"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


def load_docker_settings(env: Mapping[str, str]) -> DockerSettings:
    """The ``HOST_RUNNER_DOCKER_*`` settings and ``HOST_RUNNER_SANDBOX_MOUNT_ROOTS``."""
    d = DockerSettings()
    return DockerSettings(
        binary=read_setting(env, "HOST_RUNNER_DOCKER_BIN", d.binary, str, "a program name or path"),
        pull=read_setting(env, "HOST_RUNNER_DOCKER_PULL", d.pull, one_of(PULL_POLICIES), ", ".join(PULL_POLICIES)),
        timeout_seconds=read_setting(env, "HOST_RUNNER_DOCKER_TIMEOUT_SECONDS", d.timeout_seconds,
                              number_in(float, 1, 86_400), "seconds 1..86400"),
        read_only=read_setting(env, "HOST_RUNNER_DOCKER_READ_ONLY", d.read_only, boolean, "true or false"),
        tmpfs=read_setting(env, "HOST_RUNNER_DOCKER_TMPFS", d.tmpfs, tmpfs_mounts, "absolute paths (shlex syntax) or none"),
        cap_drop_all=read_setting(env, "HOST_RUNNER_DOCKER_CAP_DROP_ALL", d.cap_drop_all, boolean, "true or false"),
        no_new_privileges=read_setting(env, "HOST_RUNNER_DOCKER_NO_NEW_PRIVILEGES", d.no_new_privileges, boolean,
                                "true or false"),
        network=read_setting(env, "HOST_RUNNER_DOCKER_NETWORK", d.network, network_name, "a Docker network name"),
        pids_limit=read_setting(env, "HOST_RUNNER_DOCKER_PIDS_LIMIT", d.pids_limit, number_in(int, 0, 4_194_304),
                         "an integer 0..4194304 (0: no limit)"),
        memory=read_setting(env, "HOST_RUNNER_DOCKER_MEMORY", d.memory, memory_size, "a size such as 512m or 2g (0: no limit)"),
        cpus=read_setting(env, "HOST_RUNNER_DOCKER_CPUS", d.cpus, number_in(float, 0, 1024), "a number of CPUs (0: no limit)"),
        init=read_setting(env, "HOST_RUNNER_DOCKER_INIT", d.init, boolean, "true or false"),
        mount_roots=read_setting(env, "HOST_RUNNER_SANDBOX_MOUNT_ROOTS", d.mount_roots, absolute_paths,
                          "absolute directories separated by ':'"),
    )


def is_loopback_bind(bind: str) -> bool:
    """True when a gunicorn bind address only listens on this machine (loopback or a unix socket)."""
    if bind.startswith("unix:"):
        return True
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_token(env: Mapping[str, str]) -> str | None:
    """HOST_RUNNER_API_TOKEN, or the content of the file HOST_RUNNER_API_TOKEN_FILE (not both)."""
    try:
        return token_from_environment(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def read_header_timeout(env: Mapping[str, str]) -> float:
    """``HOST_RUNNER_HEADER_TIMEOUT_SECONDS`` alone: gunicorn's worker needs only this setting (and must not
    read the token file again for it)."""
    # Below half a second a slow but honest link could not send a request at all; above five minutes a
    # stalled connection would hold a file descriptor and a buffer for no purpose.
    return read_setting(env, "HOST_RUNNER_HEADER_TIMEOUT_SECONDS", Config.header_timeout_seconds,
                 number_in(float, 0.5, 300), "seconds 0.5..300")


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read and validate every setting from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    defaults = Config()
    template = read_setting(env, "HOST_RUNNER_CMD_TEMPLATE", None, argv, "a command line (shlex syntax)") or None
    config = Config(
        data_dir=Path(read_setting(env, "HOST_RUNNER_DATA_DIR", str(defaults.data_dir), str, "a directory")).absolute(),
        bind=read_setting(env, "HOST_RUNNER_BIND", defaults.bind, str, "HOST:PORT"),
        executor=read_setting(env, "HOST_RUNNER_EXECUTOR", defaults.executor, one_of(EXECUTORS), " or ".join(EXECUTORS)),
        cmd_template=template,
        codex_bin=read_setting(env, "HOST_RUNNER_CODEX_BIN", defaults.codex_bin, str, "a program name or path"),
        codex_args=read_setting(env, "HOST_RUNNER_CODEX_ARGS", defaults.codex_args, argv, "arguments (shlex syntax)"),
        codex_json=read_setting(env, "HOST_RUNNER_CODEX_JSON", defaults.codex_json, boolean, "true or false"),
        claude_bin=read_setting(env, "HOST_RUNNER_CLAUDE_BIN", defaults.claude_bin, str, "a program name or path"),
        claude_args=read_setting(env, "HOST_RUNNER_CLAUDE_ARGS", defaults.claude_args, argv, "arguments (shlex syntax)"),
        max_concurrency=read_setting(env, "HOST_RUNNER_MAX_CONCURRENCY", defaults.max_concurrency,
                              number_in(int, 1, 10_000), "an integer 1..10000"),
        kill_grace_seconds=read_setting(env, "HOST_RUNNER_KILL_GRACE_SECONDS", defaults.kill_grace_seconds,
                                 number_in(float, 0, 600), "seconds 0..600"),
        default_timeout_seconds=read_setting(env, "HOST_RUNNER_DEFAULT_TIMEOUT_SECONDS", defaults.default_timeout_seconds,
                                      number_in(float, 1, 86_400), "seconds 1..86400"),
        mock_seconds=read_setting(env, "HOST_RUNNER_MOCK_SECONDS", defaults.mock_seconds,
                           number_in(float, 0, 3_600), "seconds 0..3600"),
        api_token=_read_token(env),
        allowed_hosts=read_setting(env, "HOST_RUNNER_ALLOWED_HOSTS", defaults.allowed_hosts, host_names,
                            "host names or addresses separated by ','"),
        allowed_executors=read_setting(env, "HOST_RUNNER_ALLOWED_EXECUTORS", defaults.allowed_executors, executor_names,
                                f"executors separated by ',' ({', '.join(EXECUTORS)})"),
        task_env=read_setting(env, "HOST_RUNNER_TASK_ENV", defaults.task_env, one_of(("inherit", "minimal")),
                       "inherit or minimal"),
        task_env_pass=read_setting(env, "HOST_RUNNER_TASK_ENV_PASS", defaults.task_env_pass, variable_names,
                            "variable names separated by ','"),
        socket_group=read_setting(env, "HOST_RUNNER_SOCKET_GROUP", None, existing_group, "an existing group name or id"),
        shutdown=read_setting(env, "HOST_RUNNER_SHUTDOWN", defaults.shutdown, one_of(("leave", "cancel")), "leave or cancel"),
        wrapper=read_setting(env, "HOST_RUNNER_WRAPPER", defaults.wrapper, one_of(("auto", "native", "python")),
                      "auto, native or python"),
        cleanup_worktree=read_setting(env, "HOST_RUNNER_CLEANUP_WORKTREE", defaults.cleanup_worktree, boolean, "true or false"),
        lock_violation=read_setting(env, "HOST_RUNNER_LOCK_VIOLATION", defaults.lock_violation,
                                    one_of(("report", "fail")), "report or fail"),
        callback_timeout_seconds=read_setting(env, "HOST_RUNNER_CALLBACK_TIMEOUT_SECONDS", defaults.callback_timeout_seconds,
                                       number_in(float, 0.1, 300), "seconds 0.1..300"),
        callback_max_attempts=read_setting(env, "HOST_RUNNER_CALLBACK_MAX_ATTEMPTS", defaults.callback_max_attempts,
                                    number_in(int, 1, 100), "an integer 1..100"),
        callback_workers=read_setting(env, "HOST_RUNNER_CALLBACK_WORKERS", defaults.callback_workers,
                               number_in(int, 1, 256), "an integer 1..256"),
        callback_backoff_seconds=read_setting(env, "HOST_RUNNER_CALLBACK_BACKOFF_SECONDS", defaults.callback_backoff_seconds,
                                       number_in(float, 0.01, 60), "seconds 0.01..60"),
        callback_backoff_max_seconds=read_setting(env, "HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS",
                                           defaults.callback_backoff_max_seconds, number_in(float, 0.01, 3_600),
                                           "seconds 0.01..3600"),
        callback_secret=read_setting(env, "HOST_RUNNER_CALLBACK_SECRET", None, str, "a secret"),
        callback_allowed_hosts=read_setting(env, "HOST_RUNNER_CALLBACK_ALLOWED_HOSTS", None, parse_allowed_hosts,
                                     "comma-separated host names, IP addresses or CIDRs"),
        log_level=read_setting(env, "HOST_RUNNER_LOG_LEVEL", defaults.log_level,
                        one_of(("DEBUG", "INFO", "WARNING", "ERROR")), "DEBUG, INFO, WARNING or ERROR"),
        log_format=read_setting(env, "HOST_RUNNER_LOG_FORMAT", defaults.log_format, one_of(("text", "json")),
                         "text or json"),
        log_prompts=read_setting(env, "HOST_RUNNER_LOG_PROMPTS", defaults.log_prompts, boolean, "true or false"),
        max_log_followers=read_setting(env, "HOST_RUNNER_MAX_LOG_FOLLOWERS", defaults.max_log_followers,
                                number_in(int, 0, 1000), "an integer 0..1000"),
        header_timeout_seconds=read_header_timeout(env),
        stream_keepalive_seconds=read_setting(env, "HOST_RUNNER_STREAM_KEEPALIVE_SECONDS",
                                       defaults.stream_keepalive_seconds, number_in(float, 0.1, 3_600),
                                       "seconds 0.1..3600"),
        stream_max_behind=read_setting(env, "HOST_RUNNER_STREAM_MAX_BEHIND", defaults.stream_max_behind,
                                number_in(int, 1, 10**9), "an integer 1..1000000000"),
        stream_write_timeout_seconds=read_setting(env, "HOST_RUNNER_STREAM_WRITE_TIMEOUT_SECONDS",
                                           defaults.stream_write_timeout_seconds, number_in(float, 0.5, 3_600),
                                           "seconds 0.5..3600"),
        retention_seconds=read_setting(env, "HOST_RUNNER_RETENTION_SECONDS", defaults.retention_seconds,
                                number_in(float, 1, 3.2e9), "seconds 1..3200000000"),
        retention_max_runs=read_setting(env, "HOST_RUNNER_RETENTION_MAX_RUNS", defaults.retention_max_runs,
                                 number_in(int, 1, 1_000_000_000), "an integer 1..1000000000"),
        docker=load_docker_settings(env),
        instance_id=read_setting(env, "HOST_RUNNER_INSTANCE_ID", None, instance_id,
                          "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    )
    agent_cmd = read_setting(env, "HOST_RUNNER_AGENT_CMD", None, argv, "a command line (shlex syntax)") or None
    config = replace(
        config,
        agent_cmd=agent_cmd,
        agent_idle_seconds=read_setting(env, "HOST_RUNNER_AGENT_IDLE_SECONDS", defaults.agent_idle_seconds,
                                 number_in(float, 0.1, 86_400), "seconds 0.1..86400"),
        agent_close_grace_seconds=read_setting(env, "HOST_RUNNER_AGENT_CLOSE_GRACE_SECONDS",
                                        defaults.agent_close_grace_seconds, number_in(float, 0, 3_600),
                                        "seconds 0..3600"),
        agent_paths=read_setting(env, "HOST_RUNNER_AGENT_PATHS", defaults.agent_paths, one_of(("host", "container")),
                          "host or container"),
        agent_global_dir=read_setting(env, "HOST_RUNNER_AGENT_GLOBAL_DIR", None, existing_directory,
                               "an existing directory (absolute path)"),
        agent_extra_dirs=read_setting(env, "HOST_RUNNER_AGENT_EXTRA_DIRS", defaults.agent_extra_dirs, extra_dirs,
                               "existing directories (absolute paths, each PATH or NAME=PATH) separated by ':'"),
        max_queued=read_setting(env, "HOST_RUNNER_MAX_QUEUED", defaults.max_queued, number_in(int, 1, 10**7), "1..10000000"),
        max_output_bytes=read_setting(env, "HOST_RUNNER_MAX_OUTPUT_BYTES", defaults.max_output_bytes, byte_count, "bytes"),
        min_free_bytes=read_setting(env, "HOST_RUNNER_MIN_FREE_BYTES", defaults.min_free_bytes, byte_count, "bytes"),
        task_memory_max=read_setting(env, "HOST_RUNNER_TASK_MEMORY_MAX", defaults.task_memory_max, parse_size,
                                     "a size such as 512M or 4G (0: no limit)"),
        task_pids_max=read_setting(env, "HOST_RUNNER_TASK_PIDS_MAX", defaults.task_pids_max,
                                   number_in(int, 0, MAX_PIDS), f"an integer 0..{MAX_PIDS} (0: no limit)"),
        task_cpus=read_setting(env, "HOST_RUNNER_TASK_CPUS", defaults.task_cpus, number_in(float, 0, MAX_CPUS),
                               "a number of CPUs, may be fractional (0: no limit)"),
        cgroups=read_setting(env, "HOST_RUNNER_CGROUPS", defaults.cgroups, one_of(("auto", "v2", "v1", "off")),
                             "auto, v2, v1 or off"),
        cgroup_root=read_setting(env, "HOST_RUNNER_CGROUP_ROOT", None, cgroup_path,
                                 "a cgroup path such as /host-runner"),
    )
    if config.cgroups == "off" and config.task_limits.any:
        raise ConfigError("HOST_RUNNER_CGROUPS=off, but a task limit is set (HOST_RUNNER_TASK_MEMORY_MAX, "
                          "HOST_RUNNER_TASK_PIDS_MAX or HOST_RUNNER_TASK_CPUS): limits need cgroups")
    if config.allowed_executors and config.executor not in config.allowed_executors:
        raise ConfigError(f"HOST_RUNNER_EXECUTOR={config.executor} is not in HOST_RUNNER_ALLOWED_EXECUTORS "
                          f"({','.join(config.allowed_executors)})")
    if config.socket_group is not None and not config.bind.startswith("unix:"):
        raise ConfigError("HOST_RUNNER_SOCKET_GROUP applies to a unix socket: set HOST_RUNNER_BIND=unix:PATH too")
    problem = executor_rules(config.executor).settings_problem(config)  # registered by host_runner.executors
    if problem is not None:
        raise ConfigError(problem)
    if not is_loopback_bind(config.bind) and not config.api_token:
        raise ConfigError(
            f"HOST_RUNNER_BIND={config.bind!r} listens beyond this machine: set HOST_RUNNER_API_TOKEN "
            "so that nobody else can run commands here"
        )
    return config
