output "nats_url" {
  description = "NATS URL inside the cluster."
  value       = module.nats.client_url
}

output "tapio_images" {
  description = "Images the workloads run."
  value       = module.tapio.images
}

output "tapio_resources" {
  description = "Kubernetes resources of Tapio applied by Terraform."
  value       = module.tapio.resource_ids
}
