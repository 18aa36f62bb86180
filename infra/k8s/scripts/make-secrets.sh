#!/usr/bin/env bash
# Creates the Secrets Tapio's NATS deployment needs (they are never committed): a CA, the NATS
# server certificate and one client certificate per workload, whose DNS subjectAltName is the NATS
# user the servers map it to (verify_and_map, see auth.conf). Files are kept in --out, so running it
# again reuses the same identities. Writes secrets.yaml there; --apply applies it.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: make-secrets.sh --out DIR [--namespace NS] [--san SAN]... [--apply] [--operator]

Generates (only what is missing in DIR):
  ca.crt ca.key                 CA that signs everything below (10 years)
  server.crt server.key         NATS server + route certificate (client and server use), SANs for the
                                Services of the StatefulSet (tapio-nats, nats-jetstream), the Helm chart
                                (tapio-nats-headless) and nats-operator (tapio-nats-mgmt), localhost
  clients/<id>.crt <id>.key     one client certificate per workload: CN = the workload, DNS SAN = the
                                NATS user the servers map it to (verify_and_map):
                                  k8s-collector, systemd-collector, ebpf-collector, cni-collector
                                                -> tapio-collectors
                                  correlator    -> tapio-correlation
                                  pipeline      -> tapio-pipeline
                                  siem-exporter -> tapio-siem-exporter
                                  readers       -> tapio-consumers   (dashboards, debugging)
                                  nack          -> nack              (the NACK controller)
                                  admin         -> tapio-admin       (operators, tapio-admin CLI)
  passwords/<user>              only with --operator: one password per NATS user of auth.conf
and writes DIR/secrets.yaml with the Secrets:
  nats-server-tls          ca.crt tls.crt tls.key  (NATS pods)
  nats-client-<id>         ca.crt tls.crt tls.key  one per client above, its own key only
                                                   (nats-client-admin: operators, mounted by no workload)
  nats-clients-auth        clients-auth.json       (only with --operator: nats-operator's users)
  nats-operator-passwords  <user>: password        (only with --operator: nats-operator cannot map a
                                                   certificate to a user, so there clients send passwords;
                                                   tapio-admin's is in passwords/ only)

options:
  --out DIR        where keys, certificates, passwords and secrets.yaml live (created; keep it private)
  --namespace NS   namespace of the Secrets and of the DNS names in the certificate (default: tapio)
  --san SAN        one more subjectAltName of the server certificate, e.g. IP:10.0.0.5 or
                   DNS:nats.example.org (repeatable; for servers reached by another name or address)
  --apply          kubectl apply -f DIR/secrets.yaml (current kubectl context)
  --operator       also write nats-operator's clients-auth.json and the passwords (needs python3)

example:
  infra/k8s/scripts/make-secrets.sh --out ~/.tapio/local-secrets --apply
EOF
}

die() { echo "make-secrets: error: $*" >&2; exit 1; }

out="" namespace=tapio apply=0 operator=0 extra_sans=""
while (($#)); do
  case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --namespace) [ $# -ge 2 ] || die "--namespace needs a name"; namespace=$2; shift 2 ;;
    --san)
      [ $# -ge 2 ] || die "--san needs a subjectAltName (IP:ADDR or DNS:NAME)"
      [[ $2 =~ ^(IP|DNS):[A-Za-z0-9.:*-]+$ ]] || die "--san $2: expected IP:ADDR or DNS:NAME"
      extra_sans+=",$2"; shift 2 ;;
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

mkdir -p "$out/clients"
chmod 700 "$out" "$out/clients"
cd "$out"

# Users are read from auth.conf ("user: NAME" lines); every client below maps to one of them.
mapfile -t users < <(sed -n 's/^[[:space:]]*user:[[:space:]]*\([A-Za-z0-9_-]*\)[[:space:]]*$/\1/p' "$auth_conf")
((${#users[@]})) || die "no users found in $auth_conf"

# Client certificates: id (Secret nats-client-<id>), common name (the workload), NATS user (DNS SAN).
clients=(
  "k8s-collector tapio-k8s-collector tapio-collectors"
  "systemd-collector tapio-systemd-collector tapio-collectors"
  "ebpf-collector tapio-ebpf-collector tapio-collectors"
  "cni-collector tapio-cni-collector tapio-collectors"
  "correlator tapio-correlator tapio-correlation"
  "pipeline tapio-pipeline tapio-pipeline"
  "siem-exporter tapio-siem-exporter tapio-siem-exporter"
  "readers tapio-readers tapio-consumers"
  "nack nack nack"
  "admin tapio-admin tapio-admin"
)
for c in "${clients[@]}"; do
  read -r _ _ user <<<"$c"
  # (a here-string, not a pipe: with pipefail, grep -q leaving early can fail the writer with SIGPIPE)
  grep -qx -- "$user" <<<"$(printf '%s\n' "${users[@]}")" || die "client user $user is not a user of $auth_conf"
done

if ((operator)); then
  mkdir -p passwords
  chmod 700 passwords
  # nats-server parses a password like a config value: letters first, then letters and digits only.
  new_password() {
    local p
    p=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 40)
    printf 'p%s' "$p"
  }
  for u in "${users[@]}"; do
    [ -s "passwords/$u" ] || { new_password >"passwords/$u"; chmod 600 "passwords/$u"; }
  done
fi

if [ ! -s ca.crt ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=tapio-nats-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.crt 2>/dev/null
fi

sign() { # sign PATH CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
  local name=$1 cn=$2 eku=$3 san=${4:-}
  # An existing certificate is reused while it still names its workload and user.
  if [ -s "$name.crt" ] && [ -s "$name.key" ] && [ "$(names "$name.crt")" = "CN=$cn $san" ]; then
    return 0
  fi
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  chmod 600 "$name.key"
}

names() { # "CN=<cn> <SANs as written to sign>" of a certificate
  local subject san
  subject=$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
  san=$(openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 |
    sed -e 's/^[[:space:]]*//' -e 's/, /,/g' -e 's/IP Address:/IP:/g')
  printf '%s %s' "$subject" "$san"
}

sans="DNS:localhost,IP:127.0.0.1"
for svc in tapio-nats nats-jetstream tapio-nats-headless tapio-nats-mgmt; do
  for suffix in "" ".$namespace" ".$namespace.svc" ".$namespace.svc.cluster.local"; do
    sans+=",DNS:$svc$suffix,DNS:*.$svc$suffix"
  done
done
sans+=$extra_sans
sign server tapio-nats serverAuth,clientAuth "$sans"
for c in "${clients[@]}"; do
  read -r id cn user <<<"$c"
  sign "clients/$id" "$cn" clientAuth "DNS:$user"
done

b64() { base64 -w0 <"$1"; }

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
EOF
  # One Secret per client, holding its own certificate and key only.
  for c in "${clients[@]}"; do
    read -r id cn user <<<"$c"
    cat <<EOF
---
apiVersion: v1
kind: Secret
metadata:
  name: nats-client-$id
  namespace: $namespace
  annotations:
    tapio.io/nats-user: $user
type: Opaque
data:
  ca.crt: $(b64 ca.crt)
  tls.crt: $(b64 "clients/$id.crt")
  tls.key: $(b64 "clients/$id.key")
EOF
  done
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
    echo "---"
    echo "apiVersion: v1"
    echo "kind: Secret"
    echo "metadata:"
    echo "  name: nats-operator-passwords"
    echo "  namespace: $namespace"
    echo "type: Opaque"
    echo "data:"
    for u in "${users[@]}"; do
      # the operators' password stays out of every Secret a workload may read
      [ "$u" = tapio-admin ] || echo "  $u: $(b64 "passwords/$u")"
    done
  } >>secrets.yaml
fi

echo "make-secrets: wrote $out/secrets.yaml (clients: ${#clients[@]}; users: ${users[*]})"
if ((apply)); then
  command -v kubectl >/dev/null || die "--apply needs kubectl"
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  kubectl apply -f secrets.yaml
fi
