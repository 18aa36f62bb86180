variable "manifests_path" {
  description = "Kustomization with Tapio's resources, e.g. infra/k8s/overlays/external-nats (NATS installed by modules/nats)."
  type        = string
}

variable "namespace" {
  description = "Namespace of the Tapio resources (must exist)."
  type        = string
  default     = "tapio"
}

variable "image_tag" {
  description = "Tag of every tapio/<component> image (kustomize images override)."
  type        = string
  default     = "latest"
}

variable "image_registry" {
  description = "Registry prefix of the images, e.g. \"ghcr.io/acme\"; empty = as in the manifests."
  type        = string
  default     = ""
}

variable "components" {
  description = "Image names of the Tapio workloads (tapio/<component>)."
  type        = list(string)
  default     = ["k8s-collector", "systemd-collector", "ebpf-collector", "cni-collector", "correlator", "pipeline", "siem-exporter"]
}

variable "after" {
  description = "Applied only after this value is known, e.g. module.nats.ready (NACK's CRDs must exist first)."
  type        = string
  default     = ""
}
