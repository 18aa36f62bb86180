# mode = "operator": the seed's route. nats-operator from its release manifests (the seed's
# `kubectl apply` URLs), the users of auth.conf as nats-operator's clients-auth.json (from
# permissions.json, kept equal to auth.conf by infra/tests), and the NatsCluster of
# infra/k8s/overlays/nats-operator. nats-operator cannot enable JetStream: Tapio's streams need the
# Helm mode (see infra/README.md).
data "http" "nats_operator" {
  count = local.operator ? length(var.nats_operator_manifest_urls) : 0
  url   = var.nats_operator_manifest_urls[count.index]
}

locals {
  operator_docs = flatten([
    for i, page in data.http.nats_operator : [
      for doc in split("\n---", page.response_body) : {
        order    = i
        manifest = yamldecode(doc)
      } if try(yamldecode(doc).kind, null) != null
    ]
  ])
  # Cluster-wide kinds first (namespaces, CRDs, RBAC), then the rest, file by file.
  operator_tier0 = {
    for d in local.operator_docs :
    "${d.manifest.kind}/${try(d.manifest.metadata.namespace, "_")}/${d.manifest.metadata.name}" => d.manifest
    if contains(["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"], d.manifest.kind)
  }
  operator_tier1 = {
    for d in local.operator_docs :
    "${d.manifest.kind}/${try(d.manifest.metadata.namespace, "_")}/${d.manifest.metadata.name}" => d.manifest
    if !contains(keys(local.operator_tier0), "${d.manifest.kind}/${try(d.manifest.metadata.namespace, "_")}/${d.manifest.metadata.name}")
  }

  natscluster = yamldecode(file("${var.k8s_dir}/overlays/nats-operator/natscluster.yaml"))
  permissions = jsondecode(file("${var.k8s_dir}/base/nats/permissions.json")).users
}

resource "kustomization_resource" "operator_tier0" {
  for_each = local.operator_tier0
  manifest = jsonencode(each.value)
}

resource "kustomization_resource" "operator_tier1" {
  for_each   = local.operator_tier1
  manifest   = jsonencode(each.value)
  depends_on = [kustomization_resource.operator_tier0]
}

resource "kubernetes_secret" "clients_auth" {
  count = local.operator ? 1 : 0
  metadata {
    name      = "nats-clients-auth"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  data = {
    "clients-auth.json" = jsonencode({
      users = [for u, perms in local.permissions : { username = u, password = local.passwords[u], permissions = perms }]
    })
  }
}

# The workloads' passwords for nats-operator (overlays/nats-operator/passwords.yaml reads them); the
# operators' password stays out of it.
resource "kubernetes_secret" "operator_passwords" {
  count = local.operator ? 1 : 0
  metadata {
    name      = "nats-operator-passwords"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  data = { for u in local.users : u => local.passwords[u] if u != "tapio-admin" }
}

resource "kustomization_resource" "natscluster" {
  count = local.operator ? 1 : 0
  manifest = jsonencode(merge(local.natscluster, {
    metadata = merge(local.natscluster.metadata, { namespace = kubernetes_namespace.this.metadata[0].name })
  }))
  depends_on = [
    kustomization_resource.operator_tier1,
    kubernetes_secret.server_tls,
    kubernetes_secret.clients_auth,
    kubernetes_secret.operator_passwords,
  ]
}
