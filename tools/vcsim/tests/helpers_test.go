// Shared set-up of the linuxkit-swarm regression tests (tools/vcsim/tests).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// clusterPlacement is where the tests create VMs, like the provider at the
// seed's site: the default datacenter's VM folder and its cluster's pool.
func clusterPlacement(ctx context.Context, t *testing.T, c *vim25.Client) (*object.Folder, *object.ResourcePool) {
	t.Helper()
	finder := find.NewFinder(c)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := finder.ResourcePool(ctx, "DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	return folders.VmFolder, pool
}

// containerVM creates a powered-off VM backed by a container (RUN.container of a
// dummy image, no DMI volume) with spec's other settings and extraConfig; the
// docker CLI it calls is the test's fakeDocker.
func containerVM(ctx context.Context, t *testing.T, c *vim25.Client, spec types.VirtualMachineConfigSpec) *object.VirtualMachine {
	t.Helper()
	vmFolder, pool := clusterPlacement(ctx, t, c)
	spec.GuestId = string(types.VirtualMachineGuestOsIdentifierOtherGuest)
	spec.Files = &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"}
	spec.ExtraConfig = append([]types.BaseOptionValue{
		&types.OptionValue{Key: ContainerBackingOptionKey, Value: "example/guest:1"},
		&types.OptionValue{Key: "RUN.mountdmi", Value: "false"},
	}, spec.ExtraConfig...)
	task, err := vmFolder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResultEx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference))
}

// runTask runs one VM operation to its end; a failure names the step.
func runTask(ctx context.Context, t *testing.T, step string, op func() (*object.Task, error)) {
	t.Helper()
	task, err := op()
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatalf("%s: %s", step, err)
	}
}
