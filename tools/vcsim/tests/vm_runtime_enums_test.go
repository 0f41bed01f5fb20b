// Regression test for patches/04-runtime-enum-defaults.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vCenter reports faultToleranceState "notConfigured" and recordReplayState
// "inactive" for a VM without Fault Tolerance or record/replay. vcsim left both
// empty, which is no value of either enum: pyVmomi refuses the whole runtime
// (and summary) property of every VM.
func TestVirtualMachineRuntimeEnumDefaults(t *testing.T) {
	Test(func(ctx context.Context, c *vim25.Client) {
		vmFolder, pool := clusterPlacement(ctx, t, c)
		spec := types.VirtualMachineConfigSpec{
			Name:    "runtime-enums",
			GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
			Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
		}
		task, err := vmFolder.CreateVM(ctx, spec, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := task.WaitForResultEx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var vm mo.VirtualMachine
		ref := info.Result.(types.ManagedObjectReference)
		if err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"runtime", "summary.runtime"}, &vm); err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]string{
			"runtime.faultToleranceState":         string(vm.Runtime.FaultToleranceState),
			"runtime.recordReplayState":           string(vm.Runtime.RecordReplayState),
			"summary.runtime.faultToleranceState": string(vm.Summary.Runtime.FaultToleranceState),
		} {
			want := string(types.VirtualMachineFaultToleranceStateNotConfigured)
			if name == "runtime.recordReplayState" {
				want = string(types.VirtualMachineRecordReplayStateInactive)
			}
			if got != want {
				t.Errorf("%s = %q, want %q (as vCenter reports)", name, got, want)
			}
		}
	})
}
