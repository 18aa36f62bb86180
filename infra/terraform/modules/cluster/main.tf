# The Kubernetes cluster Tapio runs on: a local kind cluster (Kubernetes in containers, for
# development), or an existing cluster that the caller reaches through a kubeconfig and context.
locals {
  kind = var.mode == "kind"
}

resource "kind_cluster" "this" {
  count           = local.kind ? 1 : 0
  name            = var.name
  node_image      = var.kind_node_image
  kubeconfig_path = pathexpand(var.kubeconfig_path)
  wait_for_ready  = true

  kind_config {
    kind        = "Cluster"
    api_version = "kind.x-k8s.io/v1alpha4"

    node {
      role = "control-plane"
    }

    dynamic "node" {
      for_each = range(var.kind_workers)
      content {
        role = "worker"
        # The eBPF collector compiles against the host kernel's headers (kind already shares
        # /lib/modules with its nodes).
        extra_mounts {
          host_path      = "/usr/src"
          container_path = "/usr/src"
          read_only      = true
        }
      }
    }
  }
}

# An existing cluster must be described, not guessed.
resource "terraform_data" "existing" {
  count = local.kind ? 0 : 1
  input = var.kube_context

  lifecycle {
    precondition {
      condition     = var.kube_context != null && fileexists(pathexpand(var.kubeconfig_path))
      error_message = "mode = \"existing\" needs kube_context and a readable kubeconfig_path."
    }
  }
}
