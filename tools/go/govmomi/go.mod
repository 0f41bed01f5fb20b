// Wrapper module that pins vcsim and govc. Since govmomi v0.47 both are nested
// modules, and the module proxy reachable here does not serve them, so they
// come from govmomi v0.46.3, where they are still packages of the main module.
module linuxkit-swarm/tools/go/govmomi

go 1.25

require (
	github.com/a8m/tree v0.0.0-20210115125333-10a5fd5b637d // indirect
	github.com/dougm/pretty v0.0.0-20171025230240-2ee9d7453c02 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
	github.com/vmware/govmomi v0.46.3 // indirect
	github.com/xlab/treeprint v1.2.0 // indirect
	golang.org/x/text v0.19.0 // indirect
)

tool (
	github.com/vmware/govmomi/govc
	github.com/vmware/govmomi/vcsim
)
