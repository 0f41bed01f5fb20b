// lks-vcsim: vcsim 0.56.0 (our patched tree) that backs chosen VMs with containers,
// without any change to the VMs' own configuration.
//
// It is upstream vcsim's main reduced to the flags scripts/vcsim.py uses, plus:
//
//	-container 'GLOB=SPEC'       (repeatable) a VM whose name matches the path.Match
//	                             glob GLOB gets RUN.container=SPEC when it is created,
//	                             through the simulator's ContainerImageRegistry
//	                             (simulator/container_image_registry.go). SPEC is
//	                             what vcsim puts after `docker create --name ... -e ...`
//	                             in a `bash -c` command line: an image, optionally
//	                             preceded by docker create flags, e.g.
//	                             '--cap-add ALL --security-opt seccomp=unconfined my/image:tag'.
//	-container-config 'KEY=VALUE' (repeatable) extra extraConfig keys for every
//	                             matched VM, e.g. RUN.network=<docker network>,
//	                             RUN.mountdmi=false.
//
// The first matching glob wins. The keys are added to the VM's extraConfig when the
// VM is created (CreateVM, clone, register), so they are visible to clients like any
// other extraConfig key. Everything else is upstream behaviour: the container is
// created at the first power-on with every guestinfo.* key as a VMX_GUESTINFO_*
// environment variable (and, with our patch 05, as /etc/vmware-guestinfo.json, kept
// current), started/stopped by power on/off, removed with the VM, and its IP becomes
// the guest IP.
//
// Built by tools/build.sh (tool lks-vcsim) inside the assembled vcsim/ module, so
// it uses exactly the patched simulator package and vcsim's own go.sum.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"

	// The same endpoints as upstream vcsim's main: the vSphere provider logs in to
	// the REST API (vapi) as well as to SOAP.
	_ "github.com/vmware/govmomi/cns/simulator"
	_ "github.com/vmware/govmomi/eam/simulator"
	_ "github.com/vmware/govmomi/lookup/simulator"
	_ "github.com/vmware/govmomi/pbm/simulator"
	_ "github.com/vmware/govmomi/ssoadmin/simulator"
	_ "github.com/vmware/govmomi/sts/simulator"
	_ "github.com/vmware/govmomi/vapi/appliance/simulator"
	_ "github.com/vmware/govmomi/vapi/cis/tasks/simulator"
	_ "github.com/vmware/govmomi/vapi/cluster/simulator"
	_ "github.com/vmware/govmomi/vapi/crypto/simulator"
	_ "github.com/vmware/govmomi/vapi/esx/settings/simulator"
	_ "github.com/vmware/govmomi/vapi/namespace/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
	_ "github.com/vmware/govmomi/vapi/vcenter/consumptiondomains/simulator"
	_ "github.com/vmware/govmomi/vapi/vm/simulator"
	_ "github.com/vmware/govmomi/vsan/simulator"
	_ "github.com/vmware/govmomi/vslm/simulator"
)

var buildVersion = "dev"

type pairs []string

func (p *pairs) String() string     { return strings.Join(*p, ",") }
func (p *pairs) Set(s string) error { *p = append(*p, s); return nil }

func split(flagName, s string) (string, string) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		log.Fatalf("-%s %q: want KEY=VALUE", flagName, s)
	}
	return k, v
}

func main() {
	model := simulator.VPX()

	flag.IntVar(&model.Datacenter, "dc", model.Datacenter, "Number of datacenters")
	flag.IntVar(&model.Cluster, "cluster", model.Cluster, "Number of clusters")
	flag.IntVar(&model.ClusterHost, "host", model.ClusterHost, "Number of hosts per cluster")
	flag.IntVar(&model.Host, "standalone-host", model.Host, "Number of standalone hosts")
	flag.IntVar(&model.Datastore, "ds", model.Datastore, "Number of local datastores")
	flag.IntVar(&model.Machine, "vm", model.Machine, "Number of virtual machines per resource pool")
	flag.IntVar(&model.Pool, "pool", model.Pool, "Number of resource pools per compute resource")
	flag.IntVar(&model.Portgroup, "pg", model.Portgroup, "Number of port groups")
	flag.IntVar(&model.Folder, "folder", model.Folder, "Number of folders")
	isTLS := flag.Bool("tls", true, "Enable TLS")
	listen := flag.String("l", "127.0.0.1:8989", "Listen address")
	user := flag.String("username", "", "Login username (any by default)")
	pass := flag.String("password", "", "Login password (any by default)")
	var containers, extra pairs
	flag.Var(&containers, "container", "GLOB=SPEC: VMs named GLOB are backed by a container (RUN.container=SPEC); repeatable")
	flag.Var(&extra, "container-config", "KEY=VALUE: extraConfig for every container-backed VM; repeatable")
	flag.Parse()

	if flag.Arg(0) == "version" {
		fmt.Printf("lks-vcsim (vcsim %s, patched simulator)\n", buildVersion)
		return
	}

	config := map[string]string{}
	for _, s := range extra {
		k, v := split("container-config", s)
		config[k] = v
	}

	u := &url.URL{Host: *listen}
	if *user != "" {
		u.User = url.UserPassword(*user, *pass)
	}
	// As upstream vcsim: hosts report the simulator's address as their management server.
	if host, _, found := strings.Cut(*listen, ":"); found {
		esx.HostSystem.Summary.ManagementServerIp = host
	}
	model.ServiceContent.About.FullName += " (govmomi simulator)"

	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	for _, s := range containers {
		glob, spec := split("container", s)
		model.Service.Context.Map.ContainerImages.Register(simulator.ContainerImageEntry{
			VMNameGlob:  glob,
			OCIImage:    spec,
			ExtraConfig: config,
		})
	}

	model.Service.RegisterEndpoints = true
	model.Service.Listen = u
	if *isTLS {
		model.Service.TLS = new(tls.Config)
	}
	s := model.Service.NewServer()
	fmt.Printf("export GOVC_URL=%s GOVC_SIM_PID=%d\n", s.URL, os.Getpid())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	// Removes the model, and with it every VM's backing container.
	model.Remove()
}
