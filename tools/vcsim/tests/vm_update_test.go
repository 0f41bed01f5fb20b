// Regression tests for patches/03-swap-placement-and-hw-version.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vCenter stores spec.swapPlacement from CreateVM and ReconfigVM and reports
// "inherit" for a VM created without it; terraform-provider-vsphere's
// swap_placement_policy defaults to "inherit", so vcsim's empty value was a
// perpetual diff (~swapPlacementPolicy) on every update.
func TestVirtualMachineSwapPlacement(t *testing.T) {
	Test(func(ctx context.Context, c *vim25.Client) {
		vmFolder, pool := clusterPlacement(ctx, t, c)

		swapPlacement := func(vm *object.VirtualMachine) string {
			var props mo.VirtualMachine
			if err := vm.Properties(ctx, vm.Reference(), []string{"config.swapPlacement"}, &props); err != nil {
				t.Fatal(err)
			}
			if props.Config == nil {
				return "" // not set: not reported
			}
			return props.Config.SwapPlacement
		}
		create := func(name, placement string) *object.VirtualMachine {
			spec := types.VirtualMachineConfigSpec{
				Name:          name,
				GuestId:       string(types.VirtualMachineGuestOsIdentifierOtherGuest),
				Files:         &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
				SwapPlacement: placement,
			}
			task, err := vmFolder.CreateVM(ctx, spec, pool, nil)
			if err != nil {
				t.Fatal(err)
			}
			info, err := task.WaitForResult(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference))
		}
		reconfigure := func(vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) {
			task, err := vm.Reconfigure(ctx, spec)
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
		}

		vm := create("swap-default", "")
		if got := swapPlacement(vm); got != "inherit" {
			t.Errorf("created without swapPlacement: got %q, want inherit", got)
		}

		vm = create("swap-hostlocal", "hostLocal")
		if got := swapPlacement(vm); got != "hostLocal" {
			t.Errorf("created with hostLocal: got %q", got)
		}
		reconfigure(vm, types.VirtualMachineConfigSpec{SwapPlacement: "vmDirectory"})
		if got := swapPlacement(vm); got != "vmDirectory" {
			t.Errorf("reconfigured to vmDirectory: got %q", got)
		}
		reconfigure(vm, types.VirtualMachineConfigSpec{Annotation: "other change"})
		if got := swapPlacement(vm); got != "vmDirectory" {
			t.Errorf("reconfigured without swapPlacement: got %q, want vmDirectory kept", got)
		}
	})
}

// vCenter's config option has hardwareOptions.hwVersion, the number of its
// version key. terraform-provider-vsphere's SetHardwareVersion reads it from
// QueryConfigOption on the VM's environmentBrowser as the VM's current version;
// vcsim's 0 made it call UpgradeVM_Task to the version the VM already had
// (AlreadyUpgradedFault) on the second update of a VM.
func TestQueryConfigOptionHwVersion(t *testing.T) {
	Test(func(ctx context.Context, c *vim25.Client) {
		vms, err := find.NewFinder(c).VirtualMachineList(ctx, "*")
		if err != nil {
			t.Fatal(err)
		}
		var props mo.VirtualMachine
		if err = vms[0].Properties(ctx, vms[0].Reference(), []string{"environmentBrowser", "config.version"}, &props); err != nil {
			t.Fatal(err)
		}
		number := func(key string) int32 {
			n, err := strconv.Atoi(strings.TrimPrefix(key, "vmx-"))
			if err != nil {
				t.Fatalf("version key %q: %s", key, err)
			}
			return int32(n)
		}

		// as virtualmachine.ConfigOptions does it: no key
		res, err := methods.QueryConfigOption(ctx, c, &types.QueryConfigOption{This: props.EnvironmentBrowser})
		if err != nil {
			t.Fatal(err)
		}
		opt := res.Returnval
		if opt.HardwareOptions.HwVersion == 0 || opt.HardwareOptions.HwVersion != number(opt.Version) {
			t.Errorf("default option: version %q, hwVersion %d", opt.Version, opt.HardwareOptions.HwVersion)
		}
		if got, want := opt.HardwareOptions.HwVersion, number(props.Config.Version); got != want {
			t.Errorf("default option hwVersion %d, VM created by default is %s", got, props.Config.Version)
		}

		// the option of a given key
		res, err = methods.QueryConfigOption(ctx, c, &types.QueryConfigOption{This: props.EnvironmentBrowser, Key: "vmx-17"})
		if err != nil {
			t.Fatal(err)
		}
		if opt = res.Returnval; opt.Version != "vmx-17" || opt.HardwareOptions.HwVersion != 17 {
			t.Errorf("vmx-17 option: version %q, hwVersion %d", opt.Version, opt.HardwareOptions.HwVersion)
		}

		resEx, err := methods.QueryConfigOptionEx(ctx, c, &types.QueryConfigOptionEx{
			This: props.EnvironmentBrowser,
			Spec: &types.EnvironmentBrowserConfigOptionQuerySpec{Key: "vmx-15"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if opt = resEx.Returnval; opt.Version != "vmx-15" || opt.HardwareOptions.HwVersion != 15 {
			t.Errorf("QueryConfigOptionEx vmx-15: version %q, hwVersion %d", opt.Version, opt.HardwareOptions.HwVersion)
		}
	})
}
