"""Reads the CNI configuration directory (`/etc/cni/net.d`): the config files' names and text.

Blocking (a few small files); the source calls it from a worker thread. A file that cannot be
read is reported as a problem of the parsed configuration, never skipped silently.
"""

from __future__ import annotations

import os

import attrs

from tapio_collector_cni.domain.cniconf import CONFIG_SUFFIXES, CniConfig, parse_directory

MAX_FILE_BYTES = 1 << 20


def read_directory(path: str) -> CniConfig:
    """The parsed configuration of `path`; an absent directory is an empty configuration."""
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        return CniConfig()
    except OSError as e:
        return CniConfig(problems=(f"{path}: {e.strerror}",), digest="unreadable")
    files: dict[str, str] = {}
    unreadable: list[str] = []
    for name in names:
        if not name.endswith(CONFIG_SUFFIXES):
            continue
        full = os.path.join(path, name)
        try:
            if os.path.getsize(full) > MAX_FILE_BYTES:
                unreadable.append(f"{name}: larger than {MAX_FILE_BYTES} bytes")
                continue
            with open(full, encoding="utf-8", errors="replace") as f:
                files[name] = f.read()
        except IsADirectoryError:
            continue
        except OSError as e:
            unreadable.append(f"{name}: {e.strerror}")
    config = parse_directory(files)
    if unreadable:
        config = attrs.evolve(config, problems=(*config.problems, *unreadable))
    return config
