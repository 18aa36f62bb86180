# Applies Tapio's Kubernetes resources (the kustomize tree of infra/k8s) with the kbst/kustomization
# provider, overriding image tags (and registry) like `kustomize edit set image` would. Resources go
# in the provider's three priority tiers: namespaces and CRDs, then most kinds, then webhooks.
data "kustomization_overlay" "tapio" {
  resources = [var.manifests_path]
  namespace = var.namespace

  dynamic "images" {
    for_each = toset(var.components)
    content {
      name     = "tapio/${images.value}"
      new_name = var.image_registry == "" ? null : "${var.image_registry}/tapio/${images.value}"
      new_tag  = var.image_tag
    }
  }

  kustomize_options {
    load_restrictor = "none"
  }
}

resource "terraform_data" "after" {
  input = var.after
}

resource "kustomization_resource" "p0" {
  for_each   = data.kustomization_overlay.tapio.ids_prio[0]
  manifest   = data.kustomization_overlay.tapio.manifests[each.value]
  depends_on = [terraform_data.after]
}

resource "kustomization_resource" "p1" {
  for_each   = data.kustomization_overlay.tapio.ids_prio[1]
  manifest   = data.kustomization_overlay.tapio.manifests[each.value]
  depends_on = [kustomization_resource.p0]
}

resource "kustomization_resource" "p2" {
  for_each   = data.kustomization_overlay.tapio.ids_prio[2]
  manifest   = data.kustomization_overlay.tapio.manifests[each.value]
  depends_on = [kustomization_resource.p1]
}
