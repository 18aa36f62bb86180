#!/usr/bin/env bash
# Creates the Secrets Tapio's NATS deployment needs (they are never committed): a CA, the NATS
# server certificate, client certificates, one password per NATS user. Files are kept in --out, so
# running it again reuses the same identities. Writes secrets.yaml there; --apply applies it.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: make-secrets.sh --out DIR [--namespace NS] [--apply] [--operator]

Generates (only what is missing in DIR):
  ca.crt ca.key                 CA that signs everything below (10 years)
  server.crt server.key         NATS server + route certificate (client and server use), SANs for the
                                Services of the StatefulSet (tapio-nats, nats-jetstream), the Helm chart
                                (tapio-nats-headless) and nats-operator (tapio-nats-mgmt), localhost
  client.crt client.key         client certificate of the Tapio workloads (the server verifies clients)
  nack.crt nack.key             client certificate of the NACK controller
  admin.crt admin.key           client certificate of operators (tapio-admin CLI)
  passwords/<user>              one password per NATS user of infra/k8s/base/nats/auth.conf
and writes DIR/secrets.yaml with the Secrets:
  nats-server-tls    ca.crt tls.crt tls.key                 (NATS pods)
  nats-user-creds    ca.crt tls.crt tls.key + <user>=<password> for every Tapio user (workloads, NATS)
  nats-nack-creds    ca.crt tls.crt tls.key user password  (NACK Account resource, NATS)
  nats-admin-creds   ca.crt tls.crt tls.key user password  (operators only: mounted by no workload)
  nats-clients-auth  clients-auth.json                      (only with --operator: nats-operator users)

options:
  --out DIR        where keys, certificates, passwords and secrets.yaml live (created; keep it private)
  --namespace NS   namespace of the Secrets and of the DNS names in the certificate (default: tapio)
  --apply          kubectl apply -f DIR/secrets.yaml (current kubectl context)
  --operator       also write the nats-operator clients-auth.json (needs python3)

example:
  infra/k8s/scripts/make-secrets.sh --out ~/.tapio/local-secrets --apply
EOF
}

die() { echo "make-secrets: error: $*" >&2; exit 1; }

out="" namespace=tapio apply=0 operator=0
while (($#)); do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --namespace) [ $# -ge 2 ] || die "--namespace needs a name"; namespace=$2; shift 2 ;;
    --apply) apply=1; shift ;;
    --operator) operator=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[ -n "$out" ] || { usage >&2; die "--out DIR is required"; }
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

here=$(cd "$(dirname "$0")" && pwd)
auth_conf="$here/../base/nats/auth.conf"
permissions_json="$here/../base/nats/permissions.json"
[ -f "$auth_conf" ] || die "cannot find $auth_conf"

mkdir -p "$out/passwords"
chmod 700 "$out/passwords"
chmod 700 "$out"
cd "$out"

# Users are read from auth.conf ("user: NAME" lines), so a new user there gets a password here.
mapfile -t users < <(sed -n 's/^[[:space:]]*user:[[:space:]]*\([A-Za-z0-9_-]*\)[[:space:]]*$/\1/p' "$auth_conf")
((${#users[@]})) || die "no users found in $auth_conf"

# A password nats-server reads from the environment must parse as a string: letters first, then
# letters and digits only (see auth.conf).
new_password() {
  local p
  p=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 40)
  printf 'p%s' "$p"
}
for u in "${users[@]}"; do
  [ -s "passwords/$u" ] || { new_password >"passwords/$u"; chmod 600 "passwords/$u"; }
done

if [ ! -s ca.crt ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=tapio-nats-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.crt 2>/dev/null
fi

sign() { # sign NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
  local name=$1 cn=$2 eku=$3 san=${4:-}
  [ -s "$name.crt" ] && return 0
  openssl req -newkey rsa:3072 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  chmod 600 "$name.key"
}

sans="DNS:localhost,IP:127.0.0.1"
for svc in tapio-nats nats-jetstream tapio-nats-headless tapio-nats-mgmt; do
  for suffix in "" ".$namespace" ".$namespace.svc" ".$namespace.svc.cluster.local"; do
    sans+=",DNS:$svc$suffix,DNS:*.$svc$suffix"
  done
done
sign server tapio-nats serverAuth,clientAuth "$sans"
sign client tapio-client clientAuth
sign nack nack clientAuth
sign admin tapio-admin clientAuth

b64() { base64 -w0 <"$1"; }
b64s() { printf '%s' "$1" | base64 -w0; }

{
  cat <<EOF
# Generated by infra/k8s/scripts/make-secrets.sh: do not commit.
apiVersion: v1
kind: Secret
metadata:
  name: nats-server-tls
  namespace: $namespace
type: kubernetes.io/tls
data:
  ca.crt: $(b64 ca.crt)
  tls.crt: $(b64 server.crt)
  tls.key: $(b64 server.key)
---
apiVersion: v1
kind: Secret
metadata:
  name: nats-user-creds
  namespace: $namespace
type: Opaque
data:
  ca.crt: $(b64 ca.crt)
  tls.crt: $(b64 client.crt)
  tls.key: $(b64 client.key)
EOF
  for u in "${users[@]}"; do
    # NACK's and the operators' passwords live in Secrets of their own, which no workload mounts.
    [ "$u" = nack ] || [ "$u" = tapio-admin ] || echo "  $u: $(b64 "passwords/$u")"
  done
  cat <<EOF
---
apiVersion: v1
kind: Secret
metadata:
  name: nats-nack-creds
  namespace: $namespace
type: Opaque
data:
  ca.crt: $(b64 ca.crt)
  tls.crt: $(b64 nack.crt)
  tls.key: $(b64 nack.key)
  user: $(b64s nack)
  password: $(b64 passwords/nack)
---
apiVersion: v1
kind: Secret
metadata:
  name: nats-admin-creds
  namespace: $namespace
type: Opaque
data:
  ca.crt: $(b64 ca.crt)
  tls.crt: $(b64 admin.crt)
  tls.key: $(b64 admin.key)
  user: $(b64s tapio-admin)
  password: $(b64 passwords/tapio-admin)
EOF
} >secrets.yaml.new
mv secrets.yaml.new secrets.yaml
chmod 600 secrets.yaml

if ((operator)); then
  command -v python3 >/dev/null || die "--operator needs python3"
  [ -f "$permissions_json" ] || die "cannot find $permissions_json"
  # nats-operator's clients-auth.json: the same users and permissions as auth.conf (the test suite
  # keeps permissions.json equal to auth.conf), with the generated passwords.
  python3 - "$permissions_json" passwords >clients-auth.json <<'PY'
import json, pathlib, sys
perms = json.loads(pathlib.Path(sys.argv[1]).read_text())
pw = pathlib.Path(sys.argv[2])
users = [{"username": u, "password": (pw / u).read_text(), "permissions": p} for u, p in perms["users"].items()]
json.dump({"users": users}, sys.stdout, indent=2)
PY
  chmod 600 clients-auth.json
  {
    echo "---"
    echo "apiVersion: v1"
    echo "kind: Secret"
    echo "metadata:"
    echo "  name: nats-clients-auth"
    echo "  namespace: $namespace"
    echo "type: Opaque"
    echo "data:"
    echo "  clients-auth.json: $(b64 clients-auth.json)"
  } >>secrets.yaml
fi

echo "make-secrets: wrote $out/secrets.yaml (users: ${users[*]})"
if ((apply)); then
  command -v kubectl >/dev/null || die "--apply needs kubectl"
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  kubectl apply -f secrets.yaml
fi
