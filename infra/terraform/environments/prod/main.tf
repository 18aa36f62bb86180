# Production Tapio on an existing cluster (kubeconfig + context): NATS (Helm chart, 3 JetStream
# servers on the seed's fast-ssd storage, 50Gi each) + NACK, and Tapio at a released image tag.
# State holds the generated NATS credentials: configure a private, encrypted backend (backend.tf).
locals {
  k8s_dir = abspath("${path.root}/../../../k8s")
}

module "cluster" {
  source          = "../../modules/cluster"
  mode            = "existing"
  kubeconfig_path = var.kubeconfig_path
  kube_context    = var.kube_context
}

module "nats" {
  source             = "../../modules/nats"
  mode               = "helm"
  namespace          = var.namespace
  k8s_dir            = local.k8s_dir
  replicas           = var.nats_replicas
  storage_size       = var.nats_storage_size
  storage_class      = var.nats_storage_class
  nats_image_tag     = var.nats_image_tag
  nats_chart_version = var.nats_chart_version
  nack_chart_version = var.nack_chart_version
}

module "tapio" {
  source         = "../../modules/tapio"
  manifests_path = "${local.k8s_dir}/overlays/external-nats"
  namespace      = module.nats.namespace
  image_tag      = var.image_tag
  image_registry = var.image_registry
  after          = module.nats.ready
}
