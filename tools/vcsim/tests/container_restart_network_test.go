// Regression test for patches/07-container-restart-reports-network.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vCenter shows a powered-on VM's guest network as VMware Tools reports it; a
// client that powers a VM on and waits for its IP (the vSphere provider, after
// every update that restarts a VM) sees the guest's current address. vcsim
// reported a container-backed VM's network right after the first power-on only:
// after a restart of the same container (power off, on) guest.net kept the old
// state until the container watcher's next inspect (10 s by default), and the
// restarted container may have another IP.
func TestContainerVMReportsItsNetworkAfterRestart(t *testing.T) {
	t.Setenv("VCSIM_INSPECT_INTERVAL", "1h") // no help from the periodic inspect
	fakeDocker(t)                            // before connect: its cleanup still needs the fake
	ctx, client := connect(t, VPX())
	c := client.Client

	vm := containerVM(ctx, t, c, types.VirtualMachineConfigSpec{Name: "restarted-container"})
	ip := func() string {
		t.Helper()
		var props mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"guest.ipAddress"}, &props); err != nil {
			t.Fatal(err)
		}
		return props.Guest.IpAddress
	}

	runTask(ctx, t, "power on", func() (*object.Task, error) { return vm.PowerOn(ctx) })
	if got := ip(); got != "172.17.0.2" {
		t.Fatalf("after the first power-on: guest IP %q, want 172.17.0.2", got)
	}
	runTask(ctx, t, "power off", func() (*object.Task, error) { return vm.PowerOff(ctx) })
	runTask(ctx, t, "power on again", func() (*object.Task, error) { return vm.PowerOn(ctx) })
	if got := ip(); got != "172.17.0.3" {
		t.Errorf("after power on of the same container: guest IP %q, want its current 172.17.0.3", got)
	}
}
