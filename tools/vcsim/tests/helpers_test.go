// Shared set-up of the linuxkit-swarm regression tests (tools/vcsim/tests).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
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
