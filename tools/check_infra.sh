#!/usr/bin/env bash
# Offline checks of the deployment files (part of `make lint`): flake.nix parses, Terraform is
# formatted, and every kustomize overlay renders. A missing optional tool is reported and skipped;
# any failed check ends the script with a clear message and a non-zero status.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
failed=0
say() { printf '[check_infra] %s\n' "$*"; }
fail() { printf '[check_infra] FAIL: %s\n' "$*" >&2; failed=1; }

# flake.nix: the Nix parser (Debian's nix-bin; `make setup` installs it). Parsing needs no network.
if ! command -v nix-instantiate >/dev/null; then
  fail "nix-instantiate not found: install nix-bin (apt-get install nix-bin, or run make setup)"
elif out=$(nix-instantiate --parse flake.nix 2>&1 >/dev/null); then
  say "flake.nix parses"
else
  fail "flake.nix does not parse: $out"
fi

# Terraform formatting (providers are not needed for fmt).
if ! command -v terraform >/dev/null; then
  say "notice: terraform not installed: skipping terraform fmt -check"
elif out=$(terraform fmt -check -recursive -diff infra/terraform 2>/dev/null); then
  say "terraform fmt: infra/terraform is formatted"
else
  fail "terraform fmt -check failed (run: terraform fmt -recursive infra/terraform):
$out"
fi

# kustomize overlays render (kubectl's built-in kustomize, offline).
if ! command -v kubectl >/dev/null; then
  say "notice: kubectl not installed: skipping the kustomize render of infra/k8s/overlays"
else
  for overlay in infra/k8s/overlays/*/; do
    if out=$(kubectl kustomize "$overlay" 2>&1 >/dev/null); then
      say "kustomize: ${overlay%/} renders"
    else
      fail "kubectl kustomize ${overlay%/} failed: $out"
    fi
  done
fi

if ((failed)); then
  printf '[check_infra] infrastructure checks FAILED (see above)\n' >&2
  exit 1
fi
say "all infrastructure checks passed"
