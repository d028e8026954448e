"""Running the service: its settings (config), its log lines (runner_log), the statistics behind /metrics
(stats), free disk space (disk), private files and the umask (permissions), and the API token (api_token).

May import: host_runner.domain (the settings are checked by the domain's rules: executors, callback hosts).
"""

from __future__ import annotations

from host_runner.ops.api_token import token_from_environment
from host_runner.ops.config import SECRET_VARIABLES, Config, ConfigError, DockerSettings, load_config
from host_runner.ops.setting_parsers import INSTANCE_ID
from host_runner.ops.disk import disk_is_low, free_bytes, require_free_disk
from host_runner.ops.permissions import keep_files_private, original_umask, private_directory, share_socket_with_group
from host_runner.ops.runner_log import (
    bind_log_context, configure_logging, gunicorn_json_logger_class, redact_url, task_fields,
)
from host_runner.ops.stats import (
    DURATION_BUCKETS, CallbackStats, Histogram, HistogramSnapshot, LockCheckCounts, seconds_between,
)

__all__ = [
    "token_from_environment", "INSTANCE_ID", "SECRET_VARIABLES", "Config", "ConfigError", "DockerSettings",
    "load_config", "disk_is_low", "free_bytes", "require_free_disk", "keep_files_private", "original_umask", "private_directory", "share_socket_with_group",
    "bind_log_context", "configure_logging", "gunicorn_json_logger_class", "redact_url", "task_fields",
    "DURATION_BUCKETS", "CallbackStats", "Histogram", "HistogramSnapshot", "LockCheckCounts",
    "seconds_between",
]
