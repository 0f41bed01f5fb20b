# The seed's Terraform configuration (blog post in ../shared/seed), as an OpenTofu
# project the benchmark runs side by side with the program: two nested VM folders,
# N VMs booting an ISO from the datastore, each with a vmxnet3 NIC and a thin data
# disk. Brought up to today's provider syntax and to the program's node settings so
# both tools do the same work (see docs/benchmarks.md, "What each tool does"):
#   - the ISO is uploaded by the configuration (vsphere_file), as the program pushes it;
#   - the image id in extra_config makes an ISO change reboot each VM into the new
#     ISO (a changed CD-ROM path alone would not restart a running guest);
#   - no guest network wait (the simulator has no guest tools), as in the program's
#     benchmark stack.

terraform {
  required_providers {
    vsphere = {
      source  = "hashicorp/vsphere"
      version = "2.16.1"
    }
  }
}

provider "vsphere" {
  # user, password and server come from VSPHERE_USER, VSPHERE_PASSWORD and
  # VSPHERE_SERVER: never in a file or on a command line.
  allow_unverified_ssl = true
}

data "vsphere_datacenter" "dc" {
  name = var.datacenter
}

data "vsphere_datastore" "datastore" {
  name          = var.datastore
  datacenter_id = data.vsphere_datacenter.dc.id
}

data "vsphere_resource_pool" "pool" {
  name          = var.resource_pool
  datacenter_id = data.vsphere_datacenter.dc.id
}

data "vsphere_network" "network" {
  name          = var.network
  datacenter_id = data.vsphere_datacenter.dc.id
}

resource "vsphere_folder" "parent" {
  path          = var.parent_folder
  type          = "vm"
  datacenter_id = data.vsphere_datacenter.dc.id
}

resource "vsphere_folder" "folder" {
  path          = "${vsphere_folder.parent.path}/${var.folder}"
  type          = "vm"
  datacenter_id = data.vsphere_datacenter.dc.id
}

resource "vsphere_file" "iso" {
  datacenter         = var.datacenter
  datastore          = var.datastore
  source_file        = var.iso_file
  destination_file   = "${var.iso_folder}/${var.iso_name}"
  create_directories = true
}

resource "vsphere_virtual_machine" "vm" {
  count            = var.node_count
  name             = "${var.name_prefix}${count.index}"
  folder           = vsphere_folder.folder.path
  resource_pool_id = data.vsphere_resource_pool.pool.id
  datastore_id     = data.vsphere_datastore.datastore.id

  wait_for_guest_net_timeout = 0
  wait_for_guest_ip_timeout  = 0

  num_cpus  = var.cpus
  memory    = var.memory_mb
  guest_id  = var.guest_id
  scsi_type = "pvscsi"

  network_interface {
    network_id   = data.vsphere_network.network.id
    adapter_type = "vmxnet3"
  }

  cdrom {
    datastore_id = data.vsphere_datastore.datastore.id
    path         = vsphere_file.iso.destination_file
  }

  disk {
    label            = "data"
    size             = var.data_disk_gb
    thin_provisioned = true
    unit_number      = 0
  }

  extra_config = {
    "guestinfo.linuxkit-swarm.image" = var.image_id
    "bios.bootOrder"                 = "cdrom,hdd"
  }
}

output "instance_ips" {
  value = vsphere_virtual_machine.vm[*].guest_ip_addresses
}
