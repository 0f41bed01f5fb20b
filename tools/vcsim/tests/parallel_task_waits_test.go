// Regression tests for patches/02-versioned-wait-for-updates.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// startServer starts m's server. The returned stop does not block for long
// on requests still in progress (unpatched, server-side waits may never end).
func startServer(t *testing.T, m *Model) (*url.URL, func()) {
	t.Helper()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	s := m.Service.NewServer()
	return s.URL, func() {
		done := make(chan struct{})
		go func() { s.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Log("server still has requests in progress, not waiting for them")
		}
		m.Remove()
	}
}

// Like terraform-provider-vsphere creating VMs in parallel: many goroutines wait
// for their task at once with object.Task.WaitForResultEx, i.e. each creates a
// filter on the session's one PropertyCollector and calls WaitForUpdatesEx with
// the version of its previous answer. Each wait must see its own task's update.
// connect starts m's server and logs in, both bounded by a 30 s deadline so a
// hang fails the test instead of stalling it; everything stops at cleanup.
func connect(t *testing.T, m *Model) (context.Context, *govmomi.Client) {
	t.Helper()
	u, stop := startServer(t, m)
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c
}

func TestParallelTaskWaitsOnOneCollector(t *testing.T) {
	const n = 24

	ctx, c := connect(t, VPX())
	vmFolder, pool := clusterPlacement(ctx, t, c.Client)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			spec := types.VirtualMachineConfigSpec{
				Name:    fmt.Sprintf("parallel-%d", i),
				GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
				Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
			}
			task, err := vmFolder.CreateVM(ctx, spec, pool, nil)
			if err != nil {
				errs <- err
				return
			}
			info, err := task.WaitForResultEx(ctx)
			if err != nil {
				errs <- fmt.Errorf("%s: create: %w", spec.Name, err)
				return
			}
			vm := object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
			for _, op := range []func(context.Context) (*object.Task, error){vm.PowerOn, vm.PowerOff} {
				task, err := op(ctx)
				if err == nil {
					_, err = task.WaitForResultEx(ctx)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: power: %w", spec.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Two sessions, each waiting for one task at a time on its own instance of the
// default PropertyCollector (say the provider and pyVmomi's WaitForTask). The
// instances share one reference, under which vcsim used to register them for
// object events, so one session's wait evicted the other's listener.
func TestTaskWaitsInTwoSessions(t *testing.T) {
	TaskDelay.Delay = 50 // ms: tasks end after their waits began
	defer func() { TaskDelay.Delay = 0 }()

	m := VPX()
	u, stop := startServer(t, m)
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	vms := m.Map().All("VirtualMachine")
	var wg sync.WaitGroup
	for s := range 2 {
		c, err := govmomi.NewClient(ctx, u, true)
		if err != nil {
			t.Fatal(err)
		}
		vm := object.NewVirtualMachine(c.Client, vms[s].Reference())
		wg.Go(func() {
			for i := range 10 {
				op := vm.PowerOff
				if i%2 == 1 {
					op = vm.PowerOn
				}
				task, err := op(ctx)
				if err == nil {
					_, err = task.WaitForResultEx(ctx)
				}
				if err != nil {
					t.Errorf("session %d, wait %d: %s", s, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The version protocol itself: version "" is the current state and version,
// version N what changed after N, for every caller holding N, and a version
// the collector does not know (or no longer: its log is bounded) is
// InvalidCollectorVersion.
func TestWaitForUpdatesVersions(t *testing.T) {
	m := ESX()
	ctx, c := connect(t, m)
	pc := property.DefaultCollector(c.Client)
	vm := object.NewVirtualMachine(c.Client, m.Map().Any("VirtualMachine").Reference())
	filter := new(property.WaitFilter).Add(vm.Reference(), "VirtualMachine", []string{"name"})
	pf, err := pc.CreateFilter(ctx, filter.CreateFilter)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pf.Destroy(context.Background()) }()

	wait := func(version string, maxWait ...int32) (*types.UpdateSet, error) {
		res, err := methods.WaitForUpdatesEx(ctx, c.Client, &types.WaitForUpdatesEx{
			This:    pc.Reference(),
			Version: version,
			Options: &types.WaitOptions{MaxWaitSeconds: types.NewInt32(append(maxWait, 2)[0])},
		})
		if err != nil {
			return nil, err
		}
		return res.Returnval, nil
	}

	initial, err := wait("")
	if err != nil || initial == nil || len(initial.FilterSet) != 1 {
		t.Fatalf("initial: %#v %v", initial, err)
	}
	v0 := initial.Version

	task, err := vm.Rename(ctx, "renamed")
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	for i := range 2 { // the same change for each caller at v0
		set, err := wait(v0)
		if err != nil || set == nil || set.Version == v0 {
			t.Fatalf("%d: after %s: %#v %v", i, v0, set, err)
		}
		var renamed bool
		for _, fs := range set.FilterSet {
			for _, ou := range fs.ObjectSet {
				for _, ch := range ou.ChangeSet {
					renamed = renamed || (ou.Obj == vm.Reference() && ch.Name == "name" && ch.Val == "renamed")
				}
			}
		}
		if !renamed {
			t.Errorf("%d: after %s: no name change in %#v", i, v0, set)
		}
	}

	if _, err = wait("no-such-version"); !fault.Is(err, &types.InvalidCollectorVersion{}) {
		t.Errorf("expected InvalidCollectorVersion, got %v", err)
	}

	// More changes than the collector keeps (1024): v0 expires, the latest does not.
	latest := v0
	obj := m.Map().Get(vm.Reference())
	for i := range 1100 {
		m.Map().Update(m.Service.Context, obj, []types.PropertyChange{{Name: "name", Val: fmt.Sprintf("vm-%d", i)}})
		set, err := wait(latest, 0) // 0: one update calculation, no waiting
		if err != nil || set == nil {
			t.Fatalf("change %d after %s: %#v %v", i, latest, set, err)
		}
		latest = set.Version
	}
	if _, err = wait(v0, 0); !fault.Is(err, &types.InvalidCollectorVersion{}) {
		t.Errorf("version %s after 1100 changes: expected InvalidCollectorVersion, got %v", v0, err)
	}
	if _, err = wait(latest, 0); err != nil {
		t.Errorf("latest version %s: %v", latest, err)
	}
}
