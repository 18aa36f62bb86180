output "namespace" {
  description = "Namespace holding NATS and its Secrets."
  value       = kubernetes_namespace.this.metadata[0].name
}

output "client_url" {
  description = "NATS URL of the workloads (TLS with client certificates is required)."
  value       = "nats://tapio-nats.${var.namespace}.svc:4222"
}

output "secret_names" {
  description = "Secrets created here: server TLS and one client certificate per workload, the readers, NACK and operators."
  value       = concat([kubernetes_secret.server_tls.metadata[0].name], [for s in kubernetes_secret.client : s.metadata[0].name])
}

output "ready" {
  description = "Changes once NATS and NACK (or the NatsCluster) are installed; Tapio waits for it."
  value = join(",", concat(
    [for r in helm_release.nats : r.id],
    [for r in helm_release.nack : r.id],
    [for r in kustomization_resource.natscluster : r.id],
  ))
}

output "admin_tls" {
  description = "Client certificate, key and CA of the NATS user tapio-admin (operators, tapio-admin CLI): the certificate is the identity."
  value = {
    ca   = tls_self_signed_cert.ca.cert_pem
    cert = tls_locally_signed_cert.leaf["client-admin"].cert_pem
    key  = tls_private_key.leaf["client-admin"].private_key_pem
  }
  sensitive = true
}
