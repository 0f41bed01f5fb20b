// Regression tests for patches/09-duplicate-vm-name-in-folder.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"sync"
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vCenter keeps each VM name once per folder: CreateVM_Task, RegisterVM_Task,
// CloneVM_Task and a move (MoveIntoFolder_Task, RelocateVM_Task with a folder)
// fail with DuplicateName naming the VM that has the name, and change nothing.
// vcsim created a second VM of the same name, so a `pulumi up` that created a VM
// again after an interrupted one (the first VM in vCenter, not in Pulumi's
// state) succeeded here and would fail on vCenter.
func TestDuplicateVMNameInFolder(t *testing.T) {
	// connect: bounded by a 30 s deadline, as unpatched parallel task waits on
	// one collector can hang (patch 02).
	ctx, client := connect(t, VPX())
	c := client.Client
	vmFolder, pool := clusterPlacement(ctx, t, c)
	other, err := vmFolder.CreateFolder(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}

	spec := func(name string) types.VirtualMachineConfigSpec {
		return types.VirtualMachineConfigSpec{
			Name:    name,
			GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
			Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
		}
	}
	result := func(task *object.Task, err error) (types.ManagedObjectReference, error) {
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		info, err := task.WaitForResultEx(ctx)
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		if ref, ok := info.Result.(types.ManagedObjectReference); ok {
			return ref, nil
		}
		return types.ManagedObjectReference{}, nil
	}
	create := func(f *object.Folder, name string) (types.ManagedObjectReference, error) {
		return result(f.CreateVM(ctx, spec(name), pool, nil))
	}
	// expectDuplicate: err is DuplicateName for name, held by holder.
	expectDuplicate := func(step string, err error, name string, holder types.ManagedObjectReference) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: succeeded, want DuplicateName", step)
			return
		}
		var dup *types.DuplicateName
		if _, ok := fault.As(err, &dup); !ok {
			t.Errorf("%s: %v, want DuplicateName", step, err)
			return
		}
		if dup.Name != name || dup.Object != holder {
			t.Errorf("%s: DuplicateName{%q, %v}, want {%q, %v}", step, dup.Name, dup.Object, name, holder)
		}
	}
	// vmsNamed: the VMs in folder f named name.
	vmsNamed := func(f *object.Folder, name string) []types.ManagedObjectReference {
		t.Helper()
		var props mo.Folder
		if err := f.Properties(ctx, f.Reference(), []string{"childEntity"}, &props); err != nil {
			t.Fatal(err)
		}
		var found []types.ManagedObjectReference
		for _, ref := range props.ChildEntity {
			if ref.Type != "VirtualMachine" {
				continue
			}
			var vm mo.VirtualMachine
			if err := f.Properties(ctx, ref, []string{"name"}, &vm); err != nil {
				t.Fatal(err)
			}
			if vm.Name == name {
				found = append(found, ref)
			}
		}
		return found
	}
	expectOnly := func(step string, f *object.Folder, name string, want types.ManagedObjectReference) {
		t.Helper()
		if got := vmsNamed(f, name); len(got) != 1 || got[0] != want {
			t.Errorf("%s: VMs named %q in %s: %v, want only %v", step, name, f.Reference(), got, want)
		}
	}

	first, err := create(vmFolder, "dup")
	if err != nil {
		t.Fatal(err)
	}

	// CreateVM_Task
	_, err = create(vmFolder, "dup")
	expectDuplicate("second CreateVM of dup", err, "dup", first)
	expectOnly("after the second CreateVM", vmFolder, "dup", first)

	// The same name in another folder is fine.
	elsewhere, err := create(other, "dup")
	if err != nil {
		t.Fatalf("CreateVM of dup in another folder: %v", err)
	}

	// MoveIntoFolder_Task and RelocateVM_Task into the folder that has one.
	_, err = result(vmFolder.MoveInto(ctx, []types.ManagedObjectReference{elsewhere}))
	expectDuplicate("MoveIntoFolder of the other dup", err, "dup", first)
	folder := types.NewReference(vmFolder.Reference())
	_, err = result(object.NewVirtualMachine(c, elsewhere).Relocate(ctx, types.VirtualMachineRelocateSpec{Folder: folder}, ""))
	expectDuplicate("RelocateVM of the other dup", err, "dup", first)
	expectOnly("after the moves", vmFolder, "dup", first)
	expectOnly("after the moves", other, "dup", elsewhere)
	// Moving a VM into its own folder is no conflict.
	if _, err = result(vmFolder.MoveInto(ctx, []types.ManagedObjectReference{first})); err != nil {
		t.Errorf("MoveIntoFolder of dup into its own folder: %v", err)
	}

	// CloneVM_Task
	_, err = result(object.NewVirtualMachine(c, elsewhere).Clone(ctx, vmFolder, "dup", types.VirtualMachineCloneSpec{
		Location: types.VirtualMachineRelocateSpec{Pool: types.NewReference(pool.Reference())},
	}))
	expectDuplicate("CloneVM to dup", err, "dup", first)

	// RegisterVM_Task of an unregistered VM whose name was taken meanwhile.
	spare, err := create(vmFolder, "spare")
	if err != nil {
		t.Fatal(err)
	}
	var spareProps mo.VirtualMachine
	if err := vmFolder.Properties(ctx, spare, []string{"config.files.vmPathName"}, &spareProps); err != nil {
		t.Fatal(err)
	}
	vmx := spareProps.Config.Files.VmPathName
	if err := object.NewVirtualMachine(c, spare).Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	taken, err := create(vmFolder, "spare")
	if err != nil {
		t.Fatalf("CreateVM of spare after its unregister: %v", err)
	}
	_, err = result(vmFolder.RegisterVM(ctx, vmx, "spare", false, pool, nil))
	expectDuplicate("RegisterVM as spare", err, "spare", taken)
	expectOnly("after the register", vmFolder, "spare", taken)
	if _, err = result(other.RegisterVM(ctx, vmx, "spare", false, pool, nil)); err != nil {
		t.Errorf("RegisterVM as spare in another folder: %v", err)
	}

	if t.Failed() {
		return // the parallel part needs patch 02's task waits: unpatched it only waits out the deadline
	}
	// Parallel creates of one new name: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = create(vmFolder, "race")
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		var dup *types.DuplicateName
		_, isDup := fault.As(err, &dup)
		switch {
		case err == nil:
			won++
		case !isDup:
			t.Errorf("parallel CreateVM of race: %v, want success or DuplicateName", err)
		}
	}
	if got := len(vmsNamed(vmFolder, "race")); won != 1 || got != 1 {
		t.Errorf("parallel CreateVM of race: %d succeeded, %d VMs named race; want 1 and 1", won, got)
	}
}
