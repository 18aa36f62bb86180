"""`make lint`: every module of a layered package sits in a layer of one of its `.importlinter`
layers contracts, so a new module cannot escape the layering by not being named.

Fed by `.importlinter` (layers contracts: `layers`, optional `containers`) and the package
sources found on the import path. Exit 1 lists the modules no layer covers.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

# Packages whose every module must be in a layer (a component adds itself with its contract).
LAYERED = (
    "tapio_common",
    "tapio_publisher",
    "tapio_jetstream",
    "tapio_correlator",
    "tapio_admin",
    "tapio_pipeline",
    "tapio_exporters",
    "tapio_collector",
    "tapio_collector_k8s",
    "tapio_collector_systemd",
    "tapio_collector_ebpf",
    "tapio_collector_cni",
)


def layer_modules(config: configparser.ConfigParser) -> set[str]:
    """Full names of every module named in a layer of any layers contract."""
    names: set[str] = set()
    for section in config.sections():
        if not section.startswith("importlinter:contract:") or config[section].get("type") != "layers":
            continue
        containers = config[section].get("containers", "").split() or [""]
        for line in config[section].get("layers", "").splitlines():
            for name in re.split(r"[|:]", line):
                name = name.strip().strip("()")
                if name:
                    names.update(f"{c}.{name}" if c else name for c in containers)
    return names


def modules_of(package: str) -> Iterator[str]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"check_layers: package {package} is not on the import path (make setup)")
    for root in map(Path, spec.submodule_search_locations):
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                yield ".".join((package, *parts))


def uncovered(modules: Iterable[str], covered: set[str]) -> list[str]:
    def is_covered(module: str) -> bool:
        parts = module.split(".")
        return any(".".join(parts[:n]) in covered for n in range(1, len(parts) + 1))

    return [m for m in modules if not is_covered(m) and not any(c.startswith(m + ".") for c in covered)]


def main(argv: list[str]) -> int:
    config = configparser.ConfigParser()
    config.read(argv[1] if len(argv) > 1 else ".importlinter")
    covered = layer_modules(config)
    missing = [m for pkg in LAYERED for m in uncovered(modules_of(pkg), covered)]
    for module in missing:
        print(f"check_layers: {module} is in no layer of a layers contract in .importlinter", file=sys.stderr)
    if not missing:
        print(f"check_layers: every module of {', '.join(LAYERED)} is in a layer")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
