# NATS identities, generated here and stored only in Kubernetes Secrets (and the Terraform state:
# keep the state private). The users are read from auth.conf, the file the servers load, so every
# user there gets a password and a new user needs no change here.
locals {
  auth_conf = "${var.k8s_dir}/base/nats/auth.conf"
  users     = toset(flatten(regexall("(?m)^\\s*user:\\s*([A-Za-z0-9_-]+)\\s*$", file(local.auth_conf))))

  # nats-server reads a password from the environment like a config value: it must parse as a
  # string, hence a leading letter and only letters and digits (see auth.conf).
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

  leaf_certs = {
    server = { common_name = "tapio-nats", dns_names = concat(["localhost"], local.server_dns_names), uses = ["server_auth", "client_auth"] }
    client = { common_name = "tapio-client", dns_names = [], uses = ["client_auth"] }
    nack   = { common_name = "nack", dns_names = [], uses = ["client_auth"] }
    admin  = { common_name = "tapio-admin", dns_names = [], uses = ["client_auth"] }
  }
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

resource "kubernetes_secret" "user_creds" {
  metadata {
    name      = "nats-user-creds"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  data = merge(
    {
      "ca.crt"  = tls_self_signed_cert.ca.cert_pem
      "tls.crt" = tls_locally_signed_cert.leaf["client"].cert_pem
      "tls.key" = tls_private_key.leaf["client"].private_key_pem
    },
    # NACK's and the operators' passwords are in Secrets of their own, which no workload mounts.
    { for u in local.users : u => local.passwords[u] if !contains(["nack", "tapio-admin"], u) },
  )
}

resource "kubernetes_secret" "nack_creds" {
  metadata {
    name      = "nats-nack-creds"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  data = {
    "ca.crt"  = tls_self_signed_cert.ca.cert_pem
    "tls.crt" = tls_locally_signed_cert.leaf["nack"].cert_pem
    "tls.key" = tls_private_key.leaf["nack"].private_key_pem
    user      = "nack"
    password  = local.passwords["nack"]
  }
}

resource "kubernetes_secret" "admin_creds" {
  metadata {
    name      = "nats-admin-creds"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  data = {
    "ca.crt"  = tls_self_signed_cert.ca.cert_pem
    "tls.crt" = tls_locally_signed_cert.leaf["admin"].cert_pem
    "tls.key" = tls_private_key.leaf["admin"].private_key_pem
    user      = "tapio-admin"
    password  = local.passwords["tapio-admin"]
  }
}
