"""Settings: every ``HOST_RUNNER_*`` environment variable, read once into a typed, validated :class:`Config`.

A bad value raises :class:`ConfigError` whose message names the variable, so the service refuses to start
instead of misbehaving later.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from host_runner.domain.callback_hosts import HostAllowlist, parse_allowed_hosts
from host_runner.domain.names import DEFAULT_EXECUTOR, EXECUTORS
from host_runner.domain.request import SubmitRules
from host_runner.domain.seams import executor_rules
from host_runner.ops.api_token import token_from_environment

PULL_POLICIES = ("missing", "never", "always")
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

#: Variables that hold secrets: never passed on to a task's environment, never logged.
SECRET_VARIABLES = ("HOST_RUNNER_API_TOKEN", "HOST_RUNNER_CALLBACK_SECRET")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable."""


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
    max_queued: int = 1000  # queued tasks at most; a submit beyond is answered 429
    max_output_bytes: int = 2 * 1024**3  # per stream of a run; past it the run is stopped (0: no cap)
    min_free_bytes: int = 1024**3  # below it on the data dir's filesystem, submits are answered 507
    #: How long a connection may take to deliver its request line and headers before gunicorn's worker closes
    #: it (api/gunicorn_worker.py): until then it waits in the worker's poller, not in one of the request threads.
    header_timeout_seconds: float = 10.0
    docker: DockerSettings = field(default_factory=DockerSettings)
    #: Labels this runner's containers; None until the actor system reads (or creates) ``<data dir>/instance_id``.
    instance_id: str | None = None
    agent_cmd: tuple[str, ...] | None = None
    agent_idle_seconds: float = 1800.0
    agent_close_grace_seconds: float = 60.0
    #: Which wrapper starts task processes: ``native`` (host_runner/run/wrapper.c, built with ``cc`` at start),
    #: ``python`` (host_runner/run/wrapper.py), or ``auto`` (native when a C compiler is there, else python).
    wrapper: str = "auto"
    #: The argv prefix that starts the wrapper; settled at start by
    #: :func:`host_runner.run.wrapper_build.prepare_wrapper`.
    wrapper_argv: tuple[str, ...] | None = None

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
        )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "host_runner.db"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"


T = TypeVar("T")


def _read(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw.strip())
    except (ValueError, TypeError) as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise ConfigError(f"{name}={raw!r} is not valid: expected {expected}{detail}") from None


def _number(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(f"out of range {low}..{high}")
        return value

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError("")
        return raw

    return parse


def _argv(raw: str) -> tuple[str, ...]:
    return tuple(shlex.split(raw))


def _memory(raw: str) -> str:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?[bkmgBKMG]?", raw):
        raise ValueError("")
    return raw.lower()


def _tmpfs(raw: str) -> tuple[str, ...]:
    if raw.lower() == "none":
        return ()
    mounts = tuple(shlex.split(raw))
    for mount in mounts:
        if not mount.startswith("/"):
            raise ValueError(f"{mount!r} is not an absolute path")
    return mounts


def _matching(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not pattern.fullmatch(raw):
            raise ValueError("")
        return raw

    return parse


_network = _matching(re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"))
_instance_id = _matching(INSTANCE_ID)
_bytes = _number(int, 0, 2**62)


def _paths(raw: str) -> tuple[str, ...]:
    paths = tuple(item for item in raw.split(":") if item)
    for path in paths:
        if not os.path.isabs(path):
            raise ValueError(f"{path!r} is not an absolute path")
    return paths


def _names(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")


def _names_where(ok: Callable[[str], bool], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        names = _names(raw)
        for name in names:
            if not ok(name):
                raise ValueError(f"{name!r} is not {what}")
        return names

    return parse


_host_names = _names_where(HOST_NAME.fullmatch, "a host name or address")
_executors = _names_where(EXECUTORS.__contains__, "an executor")
_env_names = _names_where(re.compile(r"[A-Za-z_][A-Za-z0-9_]*").fullmatch, "a variable name")


def _group(raw: str) -> str:
    try:
        grp.getgrgid(int(raw)) if raw.isdigit() else grp.getgrnam(raw)
    except (KeyError, OverflowError):
        raise ValueError("no such group") from None
    return raw


def load_docker_settings(env: Mapping[str, str]) -> DockerSettings:
    """The ``HOST_RUNNER_DOCKER_*`` settings and ``HOST_RUNNER_SANDBOX_MOUNT_ROOTS``."""
    d = DockerSettings()
    return DockerSettings(
        binary=_read(env, "HOST_RUNNER_DOCKER_BIN", d.binary, str, "a program name or path"),
        pull=_read(env, "HOST_RUNNER_DOCKER_PULL", d.pull, _choice(PULL_POLICIES), ", ".join(PULL_POLICIES)),
        timeout_seconds=_read(env, "HOST_RUNNER_DOCKER_TIMEOUT_SECONDS", d.timeout_seconds,
                              _number(float, 1, 86_400), "seconds 1..86400"),
        read_only=_read(env, "HOST_RUNNER_DOCKER_READ_ONLY", d.read_only, _bool, "true or false"),
        tmpfs=_read(env, "HOST_RUNNER_DOCKER_TMPFS", d.tmpfs, _tmpfs, "absolute paths (shlex syntax) or none"),
        cap_drop_all=_read(env, "HOST_RUNNER_DOCKER_CAP_DROP_ALL", d.cap_drop_all, _bool, "true or false"),
        no_new_privileges=_read(env, "HOST_RUNNER_DOCKER_NO_NEW_PRIVILEGES", d.no_new_privileges, _bool,
                                "true or false"),
        network=_read(env, "HOST_RUNNER_DOCKER_NETWORK", d.network, _network, "a Docker network name"),
        pids_limit=_read(env, "HOST_RUNNER_DOCKER_PIDS_LIMIT", d.pids_limit, _number(int, 0, 4_194_304),
                         "an integer 0..4194304 (0: no limit)"),
        memory=_read(env, "HOST_RUNNER_DOCKER_MEMORY", d.memory, _memory, "a size such as 512m or 2g (0: no limit)"),
        cpus=_read(env, "HOST_RUNNER_DOCKER_CPUS", d.cpus, _number(float, 0, 1024), "a number of CPUs (0: no limit)"),
        init=_read(env, "HOST_RUNNER_DOCKER_INIT", d.init, _bool, "true or false"),
        mount_roots=_read(env, "HOST_RUNNER_SANDBOX_MOUNT_ROOTS", d.mount_roots, _paths,
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
    return _read(env, "HOST_RUNNER_HEADER_TIMEOUT_SECONDS", Config.header_timeout_seconds,
                 _number(float, 0.5, 300), "seconds 0.5..300")


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Read and validate every setting from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    defaults = Config()
    template = _read(env, "HOST_RUNNER_CMD_TEMPLATE", None, _argv, "a command line (shlex syntax)") or None
    config = Config(
        data_dir=Path(_read(env, "HOST_RUNNER_DATA_DIR", str(defaults.data_dir), str, "a directory")).absolute(),
        bind=_read(env, "HOST_RUNNER_BIND", defaults.bind, str, "HOST:PORT"),
        executor=_read(env, "HOST_RUNNER_EXECUTOR", defaults.executor, _choice(EXECUTORS), " or ".join(EXECUTORS)),
        cmd_template=template,
        codex_bin=_read(env, "HOST_RUNNER_CODEX_BIN", defaults.codex_bin, str, "a program name or path"),
        codex_args=_read(env, "HOST_RUNNER_CODEX_ARGS", defaults.codex_args, _argv, "arguments (shlex syntax)"),
        max_concurrency=_read(env, "HOST_RUNNER_MAX_CONCURRENCY", defaults.max_concurrency,
                              _number(int, 1, 10_000), "an integer 1..10000"),
        kill_grace_seconds=_read(env, "HOST_RUNNER_KILL_GRACE_SECONDS", defaults.kill_grace_seconds,
                                 _number(float, 0, 600), "seconds 0..600"),
        default_timeout_seconds=_read(env, "HOST_RUNNER_DEFAULT_TIMEOUT_SECONDS", defaults.default_timeout_seconds,
                                      _number(float, 1, 86_400), "seconds 1..86400"),
        mock_seconds=_read(env, "HOST_RUNNER_MOCK_SECONDS", defaults.mock_seconds,
                           _number(float, 0, 3_600), "seconds 0..3600"),
        api_token=_read_token(env),
        allowed_hosts=_read(env, "HOST_RUNNER_ALLOWED_HOSTS", defaults.allowed_hosts, _host_names,
                            "host names or addresses separated by ','"),
        allowed_executors=_read(env, "HOST_RUNNER_ALLOWED_EXECUTORS", defaults.allowed_executors, _executors,
                                f"executors separated by ',' ({', '.join(EXECUTORS)})"),
        task_env=_read(env, "HOST_RUNNER_TASK_ENV", defaults.task_env, _choice(("inherit", "minimal")),
                       "inherit or minimal"),
        task_env_pass=_read(env, "HOST_RUNNER_TASK_ENV_PASS", defaults.task_env_pass, _env_names,
                            "variable names separated by ','"),
        socket_group=_read(env, "HOST_RUNNER_SOCKET_GROUP", None, _group, "an existing group name or id"),
        shutdown=_read(env, "HOST_RUNNER_SHUTDOWN", defaults.shutdown, _choice(("leave", "cancel")), "leave or cancel"),
        wrapper=_read(env, "HOST_RUNNER_WRAPPER", defaults.wrapper, _choice(("auto", "native", "python")),
                      "auto, native or python"),
        cleanup_worktree=_read(env, "HOST_RUNNER_CLEANUP_WORKTREE", defaults.cleanup_worktree, _bool, "true or false"),
        callback_timeout_seconds=_read(env, "HOST_RUNNER_CALLBACK_TIMEOUT_SECONDS", defaults.callback_timeout_seconds,
                                       _number(float, 0.1, 300), "seconds 0.1..300"),
        callback_max_attempts=_read(env, "HOST_RUNNER_CALLBACK_MAX_ATTEMPTS", defaults.callback_max_attempts,
                                    _number(int, 1, 100), "an integer 1..100"),
        callback_workers=_read(env, "HOST_RUNNER_CALLBACK_WORKERS", defaults.callback_workers,
                               _number(int, 1, 256), "an integer 1..256"),
        callback_backoff_seconds=_read(env, "HOST_RUNNER_CALLBACK_BACKOFF_SECONDS", defaults.callback_backoff_seconds,
                                       _number(float, 0.01, 60), "seconds 0.01..60"),
        callback_backoff_max_seconds=_read(env, "HOST_RUNNER_CALLBACK_BACKOFF_MAX_SECONDS",
                                           defaults.callback_backoff_max_seconds, _number(float, 0.01, 3_600),
                                           "seconds 0.01..3600"),
        callback_secret=_read(env, "HOST_RUNNER_CALLBACK_SECRET", None, str, "a secret"),
        callback_allowed_hosts=_read(env, "HOST_RUNNER_CALLBACK_ALLOWED_HOSTS", None, parse_allowed_hosts,
                                     "comma-separated host names, IP addresses or CIDRs"),
        log_level=_read(env, "HOST_RUNNER_LOG_LEVEL", defaults.log_level,
                        _choice(("DEBUG", "INFO", "WARNING", "ERROR")), "DEBUG, INFO, WARNING or ERROR"),
        log_format=_read(env, "HOST_RUNNER_LOG_FORMAT", defaults.log_format, _choice(("text", "json")),
                         "text or json"),
        log_prompts=_read(env, "HOST_RUNNER_LOG_PROMPTS", defaults.log_prompts, _bool, "true or false"),
        max_log_followers=_read(env, "HOST_RUNNER_MAX_LOG_FOLLOWERS", defaults.max_log_followers,
                                _number(int, 0, 1000), "an integer 0..1000"),
        header_timeout_seconds=read_header_timeout(env),
        docker=load_docker_settings(env),
        instance_id=_read(env, "HOST_RUNNER_INSTANCE_ID", None, _instance_id,
                          "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
    )
    agent_cmd = _read(env, "HOST_RUNNER_AGENT_CMD", None, _argv, "a command line (shlex syntax)") or None
    config = replace(
        config,
        agent_cmd=agent_cmd,
        agent_idle_seconds=_read(env, "HOST_RUNNER_AGENT_IDLE_SECONDS", defaults.agent_idle_seconds,
                                 _number(float, 0.1, 86_400), "seconds 0.1..86400"),
        agent_close_grace_seconds=_read(env, "HOST_RUNNER_AGENT_CLOSE_GRACE_SECONDS",
                                        defaults.agent_close_grace_seconds, _number(float, 0, 3_600),
                                        "seconds 0..3600"),
        max_queued=_read(env, "HOST_RUNNER_MAX_QUEUED", defaults.max_queued, _number(int, 1, 10**7), "1..10000000"),
        max_output_bytes=_read(env, "HOST_RUNNER_MAX_OUTPUT_BYTES", defaults.max_output_bytes, _bytes, "bytes"),
        min_free_bytes=_read(env, "HOST_RUNNER_MIN_FREE_BYTES", defaults.min_free_bytes, _bytes, "bytes"),
    )
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
