// Regression test for patches/08-property-filter-sees-field-changes.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/types"
)

// A client waiting on "runtime.powerState" (the vSphere provider after it asked
// for a guest shutdown) must hear of the VM powering off, however the simulator
// learned it. Here the guest of a container-backed VM powers itself off: its
// container exits, and vcsim's container watcher updates the VM with AutoUpdate,
// which reports the change as the whole "runtime" field.
func TestFilterOnSubPropertySeesAutoUpdate(t *testing.T) {
	t.Setenv("VCSIM_INSPECT_INTERVAL", "100ms")
	dir := fakeDocker(t) // before connect: its cleanup still needs the fake
	ctx, client := connect(t, VPX())
	c := client.Client

	vm := containerVM(ctx, t, c, types.VirtualMachineConfigSpec{Name: "self-stopping-container"})
	runTask(ctx, t, "power on", func() (*object.Task, error) { return vm.PowerOn(ctx) })

	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := make(chan error, 1)
	go func() {
		pc := property.DefaultCollector(c)
		seen <- property.Wait(waitCtx, pc, vm.Reference(), []string{"runtime.powerState"}, func(changes []types.PropertyChange) bool {
			for _, change := range changes {
				if change.Name == "runtime.powerState" && change.Val == types.VirtualMachinePowerStatePoweredOff {
					return true
				}
			}
			return false
		})
	}()
	time.Sleep(300 * time.Millisecond) // the waiter has seen poweredOn
	// The guest powers off by itself: the container is no longer running.
	if err := os.Remove(filepath.Join(dir, "running")); err != nil {
		t.Fatal(err)
	}
	if err := <-seen; err != nil {
		t.Fatalf("a filter on runtime.powerState never saw the VM power off: %v", err)
	}
}
