variable "kubeconfig_path" {
  description = "Kubeconfig of the production cluster."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "Context of the production cluster in that kubeconfig."
  type        = string
}

variable "namespace" {
  description = "Namespace of NATS and Tapio."
  type        = string
  default     = "tapio"
}

variable "nats_replicas" {
  description = "NATS servers (3 for R3 JetStream streams)."
  type        = number
  default     = 3
}

variable "nats_storage_size" {
  description = "JetStream volume per NATS server (the seed: 50Gi)."
  type        = string
  default     = "50Gi"
}

variable "nats_storage_class" {
  description = "Storage class of the JetStream volumes (the seed: fast-ssd)."
  type        = string
  default     = "fast-ssd"
}

variable "nats_image_tag" {
  description = "nats server image tag."
  type        = string
  default     = "2.10.29-alpine"
}

variable "nats_chart_version" {
  description = "nats Helm chart version."
  type        = string
  default     = "1.2.6"
}

variable "nack_chart_version" {
  description = "nack Helm chart version."
  type        = string
  default     = "0.36.0"
}

variable "image_tag" {
  description = "Released tag of the tapio/<component> images."
  type        = string
}

variable "image_registry" {
  description = "Registry holding the Tapio images, e.g. \"ghcr.io/acme\"."
  type        = string
  default     = ""
}
