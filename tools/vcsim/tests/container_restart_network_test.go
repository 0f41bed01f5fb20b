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

	vmFolder, pool := clusterPlacement(ctx, t, c)
	spec := types.VirtualMachineConfigSpec{
		Name:    "restarted-container",
		GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
		ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: ContainerBackingOptionKey, Value: "example/guest:1"},
			&types.OptionValue{Key: "RUN.mountdmi", Value: "false"},
		},
	}
	task, err := vmFolder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResultEx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm := object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference))
	run := func(step string, op func() (*object.Task, error)) {
		t.Helper()
		task, err := op()
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("%s: %s", step, err)
		}
	}
	ip := func() string {
		t.Helper()
		var props mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"guest.ipAddress"}, &props); err != nil {
			t.Fatal(err)
		}
		return props.Guest.IpAddress
	}

	run("power on", func() (*object.Task, error) { return vm.PowerOn(ctx) })
	if got := ip(); got != "172.17.0.2" {
		t.Fatalf("after the first power-on: guest IP %q, want 172.17.0.2", got)
	}
	run("power off", func() (*object.Task, error) { return vm.PowerOff(ctx) })
	run("power on again", func() (*object.Task, error) { return vm.PowerOn(ctx) })
	if got := ip(); got != "172.17.0.3" {
		t.Errorf("after power on of the same container: guest IP %q, want its current 172.17.0.3", got)
	}
}
