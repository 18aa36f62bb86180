variable "mode" {
  description = "\"kind\": create a local kind cluster; \"existing\": use a cluster reachable through a kubeconfig."
  type        = string
  default     = "kind"
  validation {
    condition     = contains(["kind", "existing"], var.mode)
    error_message = "mode must be \"kind\" or \"existing\"."
  }
}

variable "name" {
  description = "Name of the kind cluster (its kubeconfig context is kind-<name>)."
  type        = string
  default     = "tapio"
}

variable "kubeconfig_path" {
  description = "kind: where to write the cluster's kubeconfig; existing: the kubeconfig to use."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "existing: the kubeconfig context of the cluster (ignored for kind)."
  type        = string
  default     = null
}

variable "kind_node_image" {
  description = "kind node image, i.e. the Kubernetes version of the local cluster."
  type        = string
  default     = "kindest/node:v1.32.2"
}

variable "kind_workers" {
  description = "Number of kind worker nodes (the NATS servers prefer distinct nodes)."
  type        = number
  default     = 3
}
