variable "mode" {
  description = "\"helm\": the official NATS Helm chart (clustered JetStream StatefulSet) plus NACK; \"operator\": the seed's nats-operator with a NatsCluster (no JetStream, see infra/README.md)."
  type        = string
  default     = "helm"
  validation {
    condition     = contains(["helm", "operator"], var.mode)
    error_message = "mode must be \"helm\" or \"operator\"."
  }
}

variable "namespace" {
  description = "Namespace of NATS, NACK and Tapio (created here)."
  type        = string
  default     = "tapio"
}

variable "k8s_dir" {
  description = "Path of infra/k8s: auth.conf, permissions.json and the NatsCluster are read from there."
  type        = string
}

variable "replicas" {
  description = "NATS servers in the cluster (3: JetStream R3 streams, one copy per server)."
  type        = number
  default     = 3
}

variable "storage_size" {
  description = "JetStream volume per server (the seed: 50Gi; the server stores at most 10GB)."
  type        = string
  default     = "50Gi"
}

variable "storage_class" {
  description = "Storage class of the JetStream volumes (the seed: fast-ssd); null = the cluster default."
  type        = string
  default     = null
}

variable "nats_image_tag" {
  description = "Tag of the nats server image (the seed: 2.10-alpine)."
  type        = string
  default     = "2.10-alpine"
}

variable "nats_chart_version" {
  description = "Version of the nats chart of https://nats-io.github.io/k8s/helm/charts/ (1.x values layout)."
  type        = string
  default     = "1.2.6"
}

variable "nack_chart_version" {
  description = "Version of the nack chart (JetStream controller and its CRDs)."
  type        = string
  default     = "0.36.0"
}

variable "nats_operator_manifest_urls" {
  description = "mode = operator: the nats-operator manifests applied in this order (the seed's kubectl apply URLs)."
  type        = list(string)
  default = [
    "https://github.com/nats-io/nats-operator/releases/latest/download/00-prereqs.yaml",
    "https://github.com/nats-io/nats-operator/releases/latest/download/10-deployment.yaml",
  ]
}
