# NATS for Tapio. mode = "helm" (default): the official NATS Helm chart as a clustered JetStream
# StatefulSet (release tapio-nats, so the client Service is tapio-nats:4222) configured like
# infra/k8s/base/nats (TLS with client verification, the users and permissions of auth.conf, the
# seed's limits and resources), plus NACK, the controller that turns Tapio's Stream/Consumer
# resources into JetStream streams and consumers. mode = "operator": see operator.tf.
locals {
  helm     = var.mode == "helm"
  operator = var.mode == "operator"

  # Values that vary per environment; values/nats.yaml holds the rest.
  nats_overrides = {
    container = { image = { tag = var.nats_image_tag } }
    config = {
      cluster = { replicas = var.replicas }
      jetstream = {
        fileStore = { pvc = { size = var.storage_size, storageClassName = var.storage_class } }
      }
    }
  }
}

resource "kubernetes_namespace" "this" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "tapio"
      # The eBPF collector is privileged and uses host namespaces and paths.
      "pod-security.kubernetes.io/enforce" = "privileged"
      "pod-security.kubernetes.io/warn"    = "baseline"
    }
  }
}

# auth.conf, the same file the kustomize StatefulSet loads; the chart includes it (values/nats.yaml).
resource "kubernetes_config_map" "auth" {
  metadata {
    name      = "tapio-nats-auth"
    namespace = kubernetes_namespace.this.metadata[0].name
  }
  data = {
    "auth.conf" = file(local.auth_conf)
  }
}

resource "helm_release" "nats" {
  count      = local.helm ? 1 : 0
  name       = "tapio-nats"
  namespace  = kubernetes_namespace.this.metadata[0].name
  repository = "https://nats-io.github.io/k8s/helm/charts/"
  chart      = "nats"
  version    = var.nats_chart_version
  values     = [file("${path.module}/values/nats.yaml"), yamlencode(local.nats_overrides)]
  wait       = true
  timeout    = 900

  depends_on = [
    kubernetes_secret.server_tls,
    kubernetes_secret.client,
    kubernetes_config_map.auth,
  ]
}

resource "helm_release" "nack" {
  count      = local.helm ? 1 : 0
  name       = "nack"
  namespace  = kubernetes_namespace.this.metadata[0].name
  repository = "https://nats-io.github.io/k8s/helm/charts/"
  chart      = "nack"
  version    = var.nack_chart_version
  wait       = true
  values = [yamlencode({
    # Watch only this namespace; each Stream/Consumer names the Account "tapio", which carries
    # the URL, TLS files and user (infra/k8s/base/jetstream/account.yaml).
    namespaced = true
    jetstream = {
      nats = { url = "nats://tapio-nats.${var.namespace}.svc:4222" }
    }
  })]

  depends_on = [helm_release.nats]
}
