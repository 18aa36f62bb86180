output "resource_ids" {
  description = "Kubernetes resources applied (group_kind/namespace/name)."
  value = sort(concat(
    keys(kustomization_resource.p0),
    keys(kustomization_resource.p1),
    keys(kustomization_resource.p2),
  ))
}

output "images" {
  description = "Image of every Tapio component after the override."
  value = {
    for c in var.components :
    c => "${var.image_registry == "" ? "" : "${var.image_registry}/"}tapio/${c}:${var.image_tag}"
  }
}
