#!/usr/bin/env bash
# Installs what Tapio needs on a Debian machine, idempotently: apt packages, the venv from
# requirements.lock, bcc for the venv, generated protobuf modules and the dev import paths.
# A second run installs nothing. Usage: tools/setup/bootstrap.sh [--quiet]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(
  bazel-bootstrap     # offline Bazel 4.2.3 (native Python rules)
  python3-bpfcc       # bcc for the eBPF collector (PyPI's "bcc" is an unrelated package)
  linux-headers-amd64 # kernel headers bcc compiles against
  nix-bin             # nix-instantiate checks flake.nix parses
  podman runc         # container engine for testcontainers (see tools/setup/podman.sh)
  python3-venv
  git make
  rsyslog rsyslog-gnutls gnutls-bin   # real syslog receiver (plain, TLS) for the SIEM exporter tests
  prometheus-alertmanager prometheus  # real Alertmanager receiver; Prometheus scrapes /metrics
  iproute2 dbus       # netns/veth/tc for the CNI tests; the system bus for the systemd collector
  gcc libc6-dev       # compiles the eBPF benchmark's load generator (bench/ebpf_load.c)
)

missing=()
# kubectl renders the kustomize overlays in the infra checks: Debian's kubernetes-client, unless
# some kubectl is there already (another package owning /usr/bin/kubectl would conflict).
command -v kubectl >/dev/null || APT_PACKAGES+=(kubernetes-client)
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11: the one on PATH if it is 3.11, else Debian's.
python=${TAPIO_PYTHON:-}
if [ -z "$python" ]; then
  for cand in python3.11 python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      python=$(command -v "$cand"); break
    fi
  done
fi
[ -n "$python" ] || { echo "[setup] error: Python 3.11 not found (apt-get install python3)" >&2; exit 1; }

venv=.venv
stamp=$venv/.requirements.sha256
want=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ ! -x $venv/bin/python ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
  say "creating $venv from requirements.lock with $python"
  [ -x $venv/bin/python ] || "$python" -m venv $venv
  # (pip warns about every local mirror directory a package is absent from: noise, filtered)
  $venv/bin/python -m pip install -q --disable-pip-version-check --no-warn-script-location \
    --no-deps --require-hashes -r requirements.lock 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }
  echo "$want" >$stamp
fi

site=$($venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -d /usr/lib/python3/dist-packages/bcc ] && [ ! -e "$site/bcc" ]; then
  ln -s /usr/lib/python3/dist-packages/bcc "$site/bcc"
fi

# Generated protobuf modules for the venv (Bazel generates its own copy at build time).
gen=build/gen
newest_proto=$(find proto -name '*.proto' -newer $gen/.stamp 2>/dev/null | head -1 || true)
if [ ! -f $gen/.stamp ] || [ -n "$newest_proto" ]; then
  rm -rf $gen && mkdir -p $gen
  # shellcheck disable=SC2046
  $venv/bin/python tools/bazel/protoc.py --proto_path=proto --python_out=$gen --pyi_out=$gen \
    $(find proto -name '*.proto' | sort)
  touch $gen/.stamp
fi

# Import paths of the monorepo for the venv (what Bazel's imports= gives its targets).
{
  echo "$root/$gen"
  [ -d components ] && find "$root/components" -mindepth 2 -maxdepth 3 -type d -name src | sort
  echo "$root/tests/support/testing"
  echo "$root/tests/support/scenariogen"
  echo "$root/tests/support/correlator"
} >"$site/tapio-dev.pth.new"
if ! cmp -s "$site/tapio-dev.pth.new" "$site/tapio-dev.pth"; then mv "$site/tapio-dev.pth.new" "$site/tapio-dev.pth"; else rm "$site/tapio-dev.pth.new"; fi

# bcc compiles against /lib/modules/$(uname -r)/{build,source} and attaches through tracefs.
# Where the running kernel has no headers package of its own (a VM kernel), point those links at
# Debian's linux-headers-amd64 (tracepoint programs read only the tracepoint formats, which come
# from the running kernel). Root only; existing links or directories are left alone.
if [ "$(id -u)" -eq 0 ]; then
  kmod=/lib/modules/$(uname -r)
  hdr=$(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' 2>/dev/null | sort -V | tail -1)
  if [ -n "$hdr" ]; then
    mkdir -p "$kmod"
    if [ ! -e "$kmod/build" ]; then ln -sfn "$hdr" "$kmod/build"; say "linked $kmod/build -> $hdr"; fi
    common=${hdr%-amd64}-common
    if [ ! -e "$kmod/source" ] && [ -d "$common" ]; then ln -sfn "$common" "$kmod/source"; say "linked $kmod/source -> $common"; fi
  fi
  if [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
    if mount -t tracefs nodev /sys/kernel/tracing; then say "mounted tracefs on /sys/kernel/tracing"; else say "warning: could not mount tracefs (the eBPF collector needs it)"; fi
  fi
fi
