// Regression test for patches/06-container-vm-keeps-its-annotation.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A VM's notes (config.annotation) belong to the client: vCenter never rewrites
// them. vcsim set them to "inspect" whenever it synced a container-backed VM's
// state, so the vSphere provider saw its `annotation` drift on every refresh.
func TestContainerVMKeepsItsAnnotation(t *testing.T) {
	fakeDocker(t) // before connect: its cleanup (removing the VM's container) still needs the fake
	ctx, client := connect(t, VPX())
	c := client.Client

	vmFolder, pool := clusterPlacement(ctx, t, c)
	const notes = "linuxkit-swarm e2e: worker"
	spec := types.VirtualMachineConfigSpec{
		Name:       "annotated-container",
		GuestId:    string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		Annotation: notes,
		Files:      &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
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
	check := func(step string) {
		t.Helper()
		var props mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"config.annotation"}, &props); err != nil {
			t.Fatal(err)
		}
		if props.Config.Annotation != notes {
			t.Errorf("%s: annotation %q, want %q (the client's notes)", step, props.Config.Annotation, notes)
		}
	}

	for _, step := range []struct {
		name string
		op   func() (*object.Task, error)
	}{
		{"power on", func() (*object.Task, error) { return vm.PowerOn(ctx) }},
		{"power off", func() (*object.Task, error) { return vm.PowerOff(ctx) }},
		{"power on again", func() (*object.Task, error) { return vm.PowerOn(ctx) }},
	} {
		task, err := step.op()
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("%s: %s", step.name, err)
		}
		check(step.name)
	}
}
