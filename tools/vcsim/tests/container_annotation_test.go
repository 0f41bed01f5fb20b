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

	const notes = "linuxkit-swarm e2e: worker"
	vm := containerVM(ctx, t, c, types.VirtualMachineConfigSpec{Name: "annotated-container", Annotation: notes})
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

	runTask(ctx, t, "power on", func() (*object.Task, error) { return vm.PowerOn(ctx) })
	check("power on")
	runTask(ctx, t, "power off", func() (*object.Task, error) { return vm.PowerOff(ctx) })
	check("power off")
	runTask(ctx, t, "power on again", func() (*object.Task, error) { return vm.PowerOn(ctx) })
	check("power on again")
}
