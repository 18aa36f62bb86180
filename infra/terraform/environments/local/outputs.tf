output "kubeconfig" {
  description = "export KUBECONFIG=<this> to use the kind cluster."
  value       = module.cluster.kubeconfig_path
}

output "kube_context" {
  description = "kubectl context of the kind cluster."
  value       = module.cluster.kube_context
}

output "nats_url" {
  description = "NATS URL inside the cluster."
  value       = module.nats.client_url
}

output "tapio_images" {
  description = "Images the workloads run."
  value       = module.tapio.images
}
