output "namespace" {
  description = "Namespace holding NATS and its Secrets."
  value       = kubernetes_namespace.this.metadata[0].name
}

output "client_url" {
  description = "NATS URL of the workloads (TLS with client certificates is required)."
  value       = "nats://tapio-nats.${var.namespace}.svc:4222"
}

output "secret_names" {
  description = "Secrets created here: server TLS, Tapio users (passwords + client TLS), NACK."
  value       = [kubernetes_secret.server_tls.metadata[0].name, kubernetes_secret.user_creds.metadata[0].name, kubernetes_secret.nack_creds.metadata[0].name]
}

output "ready" {
  description = "Changes once NATS and NACK (or the NatsCluster) are installed; Tapio waits for it."
  value = join(",", concat(
    [for r in helm_release.nats : r.id],
    [for r in helm_release.nack : r.id],
    [for r in kustomization_resource.natscluster : r.id],
  ))
}

output "admin_password" {
  description = "Password of the NATS user tapio-admin (operators, tapio-admin CLI)."
  value       = local.passwords["tapio-admin"]
  sensitive   = true
}
