# NATS identities, generated here and stored only in Kubernetes Secrets (and the Terraform state:
# keep the state private). Each workload has a client certificate of its own (CN = the workload,
# DNS SAN = its NATS user): the servers map it to that user (verify_and_map), so the certificate is
# the identity and no password is sent. Same names as infra/k8s/scripts/make-secrets.sh.
locals {
  auth_conf = "${var.k8s_dir}/base/nats/auth.conf"
  users     = toset(flatten(regexall("(?m)^\\s*user:\\s*([A-Za-z0-9_-]+)\\s*$", file(local.auth_conf))))

  # Secret nats-client-<id>: common name (the workload) and NATS user (the DNS SAN).
  clients = {
    "k8s-collector"     = { common_name = "tapio-k8s-collector", user = "tapio-collectors" }
    "systemd-collector" = { common_name = "tapio-systemd-collector", user = "tapio-collectors" }
    "ebpf-collector"    = { common_name = "tapio-ebpf-collector", user = "tapio-collectors" }
    "cni-collector"     = { common_name = "tapio-cni-collector", user = "tapio-collectors" }
    "correlator"        = { common_name = "tapio-correlator", user = "tapio-correlation" }
    "pipeline"          = { common_name = "tapio-pipeline", user = "tapio-pipeline" }
    "siem-exporter"     = { common_name = "tapio-siem-exporter", user = "tapio-siem-exporter" }
    "readers"           = { common_name = "tapio-readers", user = "tapio-consumers" }
    "nack"              = { common_name = "nack", user = "nack" }
    "admin"             = { common_name = "tapio-admin", user = "tapio-admin" }
  }

  # Passwords only for mode = "operator": nats-operator cannot map certificates to users, so there
  # the clients send one (operator.tf). nats-server parses a password like a config value: a
  # leading letter and only letters and digits.
  passwords = { for u in local.users : u => "p${random_password.nats[u].result}" }

  # DNS names of the servers: the chart's Services (release tapio-nats), the StatefulSet of
  # infra/k8s/base (nats-jetstream) and nats-operator's (tapio-nats-mgmt); routes use pod names.
  services = ["tapio-nats", "tapio-nats-headless", "nats-jetstream", "tapio-nats-mgmt"]
  server_dns_names = flatten([
    for s in local.services : [
      for suffix in ["", ".${var.namespace}", ".${var.namespace}.svc", ".${var.namespace}.svc.cluster.local"] :
      ["${s}${suffix}", "*.${s}${suffix}"]
    ]
  ])

  leaf_certs = merge(
    { server = { common_name = "tapio-nats", dns_names = concat(["localhost"], local.server_dns_names), uses = ["server_auth", "client_auth"] } },
    { for id, c in local.clients : "client-${id}" => { common_name = c.common_name, dns_names = [c.user], uses = ["client_auth"] } },
  )
}

resource "random_password" "nats" {
  for_each = local.users
  length   = 40
  special  = false
}

resource "tls_private_key" "ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "ca" {
  private_key_pem       = tls_private_key.ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 87600
  allowed_uses          = ["cert_signing", "crl_signing"]

  subject {
    common_name = "tapio-nats-ca"
  }
}

resource "tls_private_key" "leaf" {
  for_each    = local.leaf_certs
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "leaf" {
  for_each        = local.leaf_certs
  private_key_pem = tls_private_key.leaf[each.key].private_key_pem
  dns_names       = each.value.dns_names
  ip_addresses    = each.key == "server" ? ["127.0.0.1"] : []

  subject {
    common_name = each.value.common_name
  }
}

resource "tls_locally_signed_cert" "leaf" {
  for_each              = local.leaf_certs
  cert_request_pem      = tls_cert_request.leaf[each.key].cert_request_pem
  ca_private_key_pem    = tls_private_key.ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.ca.cert_pem
  validity_period_hours = 19800
  allowed_uses          = concat(["digital_signature", "key_encipherment"], each.value.uses)
}

# Same names and keys as infra/k8s/scripts/make-secrets.sh writes.
resource "kubernetes_secret" "server_tls" {
  metadata {
    name      = "nats-server-tls"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  type = "kubernetes.io/tls"
  data = {
    "ca.crt"  = tls_self_signed_cert.ca.cert_pem
    "tls.crt" = tls_locally_signed_cert.leaf["server"].cert_pem
    "tls.key" = tls_private_key.leaf["server"].private_key_pem
  }
}

# One Secret per client, holding its own certificate and key only.
resource "kubernetes_secret" "client" {
  for_each = local.clients
  metadata {
    name        = "nats-client-${each.key}"
    namespace   = kubernetes_namespace.this.metadata[0].name
    annotations = { "tapio.io/nats-user" = each.value.user }
  }
  data = {
    "ca.crt"  = tls_self_signed_cert.ca.cert_pem
    "tls.crt" = tls_locally_signed_cert.leaf["client-${each.key}"].cert_pem
    "tls.key" = tls_private_key.leaf["client-${each.key}"].private_key_pem
  }
}
