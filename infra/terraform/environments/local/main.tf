# Local Tapio: a kind cluster, NATS (Helm chart, 3 JetStream servers) + NACK, and Tapio with images
# built on this machine and loaded into kind (`kind load docker-image tapio/<component>:dev --name tapio`).
locals {
  k8s_dir = abspath("${path.root}/../../../k8s")
}

module "cluster" {
  source          = "../../modules/cluster"
  mode            = "kind"
  name            = var.cluster_name
  kubeconfig_path = var.kubeconfig_path
  kind_workers    = var.kind_workers
}

module "nats" {
  source       = "../../modules/nats"
  mode         = var.nats_mode
  namespace    = var.namespace
  k8s_dir      = local.k8s_dir
  replicas     = 3
  storage_size = var.nats_storage_size
}

module "tapio" {
  source         = "../../modules/tapio"
  manifests_path = "${local.k8s_dir}/overlays/external-nats"
  namespace      = module.nats.namespace
  image_tag      = var.image_tag
  after          = module.nats.ready
}
