#!/usr/bin/env bash
# `make integration`: the tests/integration suites against real JetStream.
#
# Sets up podman (tools/setup/podman.sh setup + start) so testcontainers serves JetStream in
# containers; if podman cannot be set up, says so loudly and runs on the nats-server binary
# (TAPIO_NATS_ENGINE=auto falls back; TAPIO_NATS_ENGINE=container would then fail, as asked).
# The podman service is always stopped at exit (leftover test containers removed), and the exit
# code is pytest's. Extra arguments go to pytest:  tools/setup/integration.sh -k cluster -x
# TAPIO_TEST_PATH narrows what runs (make e2e: tests/integration/e2e).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PODMAN="$ROOT/tools/setup/podman.sh"
SOCK="${PODMAN_SOCK:-/run/podman/podman.sock}"
cd "$ROOT" || exit 2

loud() {
  echo "=================================================================================" >&2
  echo "integration.sh: $*" >&2
  echo "=================================================================================" >&2
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  "$PODMAN" stop || echo "integration.sh: warning: podman.sh stop failed" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

engine_up=0
if "$PODMAN" setup; then
  if "$PODMAN" start; then
    engine_up=1
  else
    loud "podman service did not start: running on the nats-server binary fallback"
  fi
else
  loud "podman could not be set up: running on the nats-server binary fallback"
fi

if ((engine_up)); then
  export DOCKER_HOST="unix://$SOCK"
  export TESTCONTAINERS_RYUK_DISABLED=true
  export TESTCONTAINERS_CONNECTION_MODE=docker_host
fi
export TAPIO_NATS_ENGINE="${TAPIO_NATS_ENGINE:-auto}"

"$ROOT/.venv/bin/pytest" "${TAPIO_TEST_PATH:-tests/integration}" -v "$@"
