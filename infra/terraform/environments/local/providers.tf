# Every Kubernetes-facing provider talks to the cluster of module.cluster. On the first apply of a
# new kind cluster the kubeconfig does not exist yet: run
#   terraform apply -target=module.cluster   then   terraform apply
# (Terraform cannot configure a provider from a resource created in the same run).
provider "kubernetes" {
  config_path    = module.cluster.kubeconfig_path
  config_context = module.cluster.kube_context
}

provider "helm" {
  kubernetes {
    config_path    = module.cluster.kubeconfig_path
    config_context = module.cluster.kube_context
  }
}

provider "kustomization" {
  kubeconfig_path = module.cluster.kubeconfig_path
  context         = module.cluster.kube_context
}
