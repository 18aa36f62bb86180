"""Configuration of every component: flags > environment > the YAML `--config` file > defaults.

- `common`: the settings all components share (NATS, TLS, metrics port, logs, data dir) and the
  component's own YAML section (`load_common`, `add_common_arguments`).
- `schema`: how a component declares its settings (`setting`, `group`, validators).
- `loader`: the one loader (`load_settings`) and the flags/--help generated from a settings class
  (`add_settings_arguments`, `describe_settings`).
- `yamldoc`: YAML files read into `Section`s that know their file and the line of each key.
"""

from tapio_common.config.common import (
    DEFAULT_METRICS_PORT,
    ENV_HELP,
    LOG_LEVELS,
    NATS_SCHEMES,
    CommonConfig,
    NatsConfig,
    TlsConfig,
    add_common_arguments,
    default_data_dir,
    load_common,
    validate,
)
from tapio_common.config.loader import (
    add_settings_arguments,
    default_text,
    describe_settings,
    flag_name,
    iter_settings,
    load_settings,
)
from tapio_common.config.schema import above, at_least, group, one_of, port, setting
from tapio_common.config.yamldoc import Section, load_yaml

__all__ = [
    "DEFAULT_METRICS_PORT",
    "ENV_HELP",
    "LOG_LEVELS",
    "NATS_SCHEMES",
    "CommonConfig",
    "NatsConfig",
    "Section",
    "TlsConfig",
    "above",
    "add_common_arguments",
    "add_settings_arguments",
    "at_least",
    "default_data_dir",
    "default_text",
    "describe_settings",
    "flag_name",
    "group",
    "iter_settings",
    "load_common",
    "load_settings",
    "load_yaml",
    "one_of",
    "port",
    "setting",
    "validate",
]
