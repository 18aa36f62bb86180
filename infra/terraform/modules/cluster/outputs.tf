output "kubeconfig_path" {
  description = "Kubeconfig to reach the cluster."
  value       = local.kind ? kind_cluster.this[0].kubeconfig_path : pathexpand(var.kubeconfig_path)
}

output "kube_context" {
  description = "Context of that kubeconfig."
  value       = local.kind ? "kind-${var.name}" : var.kube_context
}

output "endpoint" {
  description = "API server URL (kind only; null for an existing cluster)."
  value       = local.kind ? kind_cluster.this[0].endpoint : null
}
