// Regression test for patches/01-base-type-reference.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vCenter resolves a reference typed as a base type of the object's type:
// terraform-provider-vsphere's computeresource.StandaloneFromID looks a cluster
// up as "ComputeResource:<id>" (find.Finder.ObjectReference), and
// resourcepool.FromID a vApp as "ResourcePool:<id>". A reference typed as a
// subtype of the object's type stays not found: vappcontainer.IsVApp relies on
// "VirtualApp:<id>" of a plain resource pool failing.
func TestBaseTypeReferenceResolvesSubtype(t *testing.T) {
	model := VPX()
	model.App = 1 // a vApp in the cluster

	Test(func(ctx context.Context, c *vim25.Client) {
		finder := find.NewFinder(c, false)
		dc, err := finder.DefaultDatacenter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		finder.SetDatacenter(dc)

		cluster, err := finder.ClusterComputeResource(ctx, "DC0_C0")
		if err != nil {
			t.Fatal(err)
		}
		var cmo mo.ClusterComputeResource
		if err = cluster.Properties(ctx, cluster.Reference(), []string{"resourcePool"}, &cmo); err != nil {
			t.Fatal(err)
		}

		// ComputeResource -> ClusterComputeResource, as computeresource.StandaloneFromID does it
		ref := types.ManagedObjectReference{Type: "ComputeResource", Value: cluster.Reference().Value}
		obj, err := find.NewFinder(c, false).ObjectReference(ctx, ref)
		if err != nil {
			t.Fatalf("%s: %s", ref, err)
		}
		cr, ok := obj.(*object.ComputeResource)
		if !ok {
			t.Fatalf("%s: got %T", ref, obj)
		}
		if !strings.HasSuffix(cr.InventoryPath, "/DC0_C0") {
			t.Errorf("%s: inventory path %q", ref, cr.InventoryPath)
		}
		var crmo mo.ComputeResource
		if err = cr.Properties(ctx, ref, []string{"resourcePool", "name"}, &crmo); err != nil {
			t.Fatal(err)
		}
		if crmo.Name != "DC0_C0" || crmo.ResourcePool == nil || *crmo.ResourcePool != *cmo.ResourcePool {
			t.Errorf("%s: name=%q resourcePool=%v", ref, crmo.Name, crmo.ResourcePool)
		}

		// ResourcePool -> VirtualApp, as resourcepool.FromID does it
		vapp := model.Map().Any("VirtualApp")
		if vapp == nil {
			t.Fatal("no vApp")
		}
		ref = types.ManagedObjectReference{Type: "ResourcePool", Value: vapp.Reference().Value}
		if _, err = find.NewFinder(c, false).ObjectReference(ctx, ref); err != nil {
			t.Errorf("%s: %s", ref, err)
		}

		// but VirtualApp -> plain ResourcePool stays not found, as vappcontainer.IsVApp expects
		ref = types.ManagedObjectReference{Type: "VirtualApp", Value: cmo.ResourcePool.Value}
		_, err = find.NewFinder(c, false).ObjectReference(ctx, ref)
		if !fault.Is(err, &types.ManagedObjectNotFound{}) {
			t.Errorf("%s: expected ManagedObjectNotFound, got %v", ref, err)
		}
	}, model)
}
