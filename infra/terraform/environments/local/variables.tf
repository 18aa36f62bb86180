variable "cluster_name" {
  description = "Name of the kind cluster (kubeconfig context kind-<name>)."
  type        = string
  default     = "tapio"
}

variable "kubeconfig_path" {
  description = "Where kind writes the cluster's kubeconfig (kept apart from ~/.kube/config)."
  type        = string
  default     = "~/.kube/kind-tapio"
}

variable "kind_workers" {
  description = "kind worker nodes."
  type        = number
  default     = 3
}

variable "namespace" {
  description = "Namespace of NATS and Tapio."
  type        = string
  default     = "tapio"
}

variable "nats_mode" {
  description = "\"helm\" (NATS chart + NACK, JetStream) or \"operator\" (the seed's nats-operator, no JetStream)."
  type        = string
  default     = "helm"
}

variable "nats_storage_size" {
  description = "JetStream volume per NATS server (kind's local-path provisioner does not enforce it)."
  type        = string
  default     = "12Gi"
}

variable "image_tag" {
  description = "Tag of the locally built tapio/<component> images."
  type        = string
  default     = "dev"
}
