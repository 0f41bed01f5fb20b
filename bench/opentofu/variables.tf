variable "node_count" {
  description = "Number of VMs (the seed's count)."
  type        = number
  default     = 3
}

variable "name_prefix" {
  description = "VM names are <name_prefix>0..N-1 (the seed's instance_hostnames)."
  type        = string
  default     = "tf-sw-"
}

variable "datacenter" {
  type    = string
  default = "DC0"
}

variable "datastore" {
  type    = string
  default = "LocalDS_0"
}

variable "resource_pool" {
  type    = string
  default = "DC0_C0/Resources"
}

variable "network" {
  type    = string
  default = "VM Network"
}

variable "parent_folder" {
  description = "The seed's parent folder (TERRAFORM/Linux)."
  type        = string
  default     = "TERRAFORM/Linux"
}

variable "folder" {
  description = "The VM folder below parent_folder (the seed's linuxkit-dev)."
  type        = string
  default     = "linuxkit-dev"
}

variable "iso_file" {
  description = "Local path of the ISO to upload."
  type        = string
}

variable "iso_folder" {
  type    = string
  default = "linuxkit-tofu"
}

variable "iso_name" {
  description = "File name of the ISO in the datastore (content-addressed, as the program's)."
  type        = string
}

variable "image_id" {
  description = "The image's identity; a new one reboots every VM into the new ISO."
  type        = string
}

# The program's worker defaults (linuxkit_swarm/config_schema.py).
variable "cpus" {
  type    = number
  default = 2
}

variable "memory_mb" {
  type    = number
  default = 1024
}

variable "data_disk_gb" {
  type    = number
  default = 10
}

variable "guest_id" {
  type    = string
  default = "other5xLinux64Guest"
}
