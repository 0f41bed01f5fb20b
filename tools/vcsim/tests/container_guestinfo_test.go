// Regression test for patches/05-live-guestinfo-for-containers.patch (linuxkit-swarm).
// Copied into govmomi's simulator/ package by tools/vcsim/test.sh.

package simulator

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// fakeDockerID is the container id the fake docker CLI hands out.
const fakeDockerID = "0123456789abcdef"

// fakeDocker puts a `docker` executable first on PATH that answers what vcsim
// calls for a container-backed VM without any daemon: create (an id), start and
// stop (a state file that inspect reports), inspect (state, host name, and while
// running the IP 172.17.0.<1 + number of starts>),
// cp - ID:DIR (stdin saved as cp-N.tar), rm, volume/network ls (none), events
// (none, until vcsim closes its stdin). Every call but inspect and events is
// appended to calls.log, one line of arguments each. Returns the directory.
func fakeDocker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
d='` + dir + `'
case "$1" in
inspect | events) ;;
*) printf '%s\n' "$*" >>"$d/calls.log" ;;
esac
case "$1" in
create) echo ` + fakeDockerID + ` ;;
start)
	n=$(cat "$d/starts" 2>/dev/null || echo 0)
	echo $((n + 1)) >"$d/starts"
	touch "$d/running" && echo "$2"
	;;
stop) rm -f "$d/running" && echo "$2" ;;
inspect)
	running=false ip=
	# Docker gives a restarted container an address again, not always the same one.
	[ -e "$d/running" ] && running=true ip=172.17.0.$((1 + $(cat "$d/starts")))
	printf '[{"Config":{"Hostname":"fake"},"State":{"Running":%s,"Paused":false},"NetworkSettings":{"IPAddress":"%s","IPPrefixLen":16,"Gateway":"172.17.0.1","MacAddress":"02:42:ac:11:00:02","Networks":{}}}]\n' "$running" "$ip"
	;;
cp)
	n=$(ls "$d" | grep -c '^cp-.*\.tar$')
	cat >"$d/cp-$n.tar"
	;;
rm) echo "$4" ;;
volume | network) ;;
events) exec cat >/dev/null ;;
*)
	echo "fake docker: unsupported: $*" >&2
	exit 1
	;;
esac
`
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// In vSphere the guest reads guestinfo.* live from the VMX (vmware-rpctool
// "info-get guestinfo.KEY"): a value changed by ReconfigVM_Task is what it reads
// at once, or at its next boot. vcsim passed guestinfo to a container-backed VM
// only as environment variables at `docker create`, so later changes never
// reached the container (power off/on is docker stop/start of the same one).
// Patched, vcsim writes all guestinfo.* keys as JSON to /etc/vmware-guestinfo.json
// in the container (docker cp) before each start and on each change.
func TestContainerGuestInfoFollowsReconfigure(t *testing.T) {
	dir := fakeDocker(t) // before connect: its cleanup (removing the VM's container) still needs the fake
	ctx, client := connect(t, VPX())
	c := client.Client

	calls := func() []string {
		b, err := os.ReadFile(filepath.Join(dir, "calls.log"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	cpCall := "cp - " + fakeDockerID + ":/etc"
	count := func(lines []string, call string) int {
		n := 0
		for _, l := range lines {
			if l == call {
				n++
			}
		}
		return n
	}
	// the JSON of the n-th docker cp (counting from 1)
	copied := func(n int) map[string]string {
		t.Helper()
		f, err := os.Open(filepath.Join(dir, fmt.Sprintf("cp-%d.tar", n-1)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tr := tar.NewReader(f)
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != "vmware-guestinfo.json" || hdr.Mode != 0o644 {
			t.Errorf("docker cp %d: tar entry %q mode %o, want vmware-guestinfo.json 644", n, hdr.Name, hdr.Mode)
		}
		var b bytes.Buffer
		if _, err = io.Copy(&b, tr); err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		if err = json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("docker cp %d: %q: %s", n, b.String(), err)
		}
		return got
	}
	// power on: a docker cp of want, then docker start
	wantCopiedBeforeStart := func(step string, want map[string]string) {
		t.Helper()
		lines := calls()
		last := len(lines) - 1
		for last >= 0 && lines[last] != "start "+fakeDockerID {
			last--
		}
		if last < 1 || lines[last-1] != cpCall {
			t.Fatalf("%s: no %q right before docker start, the guest would read stale guestinfo; docker calls: %q", step, cpCall, lines)
		}
		if got := copied(count(lines[:last], cpCall)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: copied %v, want %v", step, got, want)
		}
	}
	// reconfigure: one more docker cp, of want
	wantCopied := func(step string, before int, want map[string]string) {
		t.Helper()
		n := count(calls(), cpCall)
		if n != before+1 {
			t.Fatalf("%s: %d docker cp, want %d; docker calls: %q", step, n, before+1, calls())
		}
		if got := copied(n); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: copied %v, want %v", step, got, want)
		}
	}
	wait := func(task *object.Task, err error) {
		t.Helper()
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	vm := containerVM(ctx, t, c, types.VirtualMachineConfigSpec{
		Name:        "guestinfo-container",
		ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "guestinfo.a", Value: "1"}},
	})
	reconfigure := func(key, value string) {
		t.Helper()
		wait(vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{
			ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: key, Value: value}},
		}))
	}

	// first power-on: docker create, then the guestinfo, then docker start
	wait(vm.PowerOn(ctx))
	if lines := calls(); !strings.HasPrefix(lines[0], "create ") {
		t.Fatalf("first docker call is not create: %q", lines)
	}
	wantCopiedBeforeStart("first power-on", map[string]string{"guestinfo.a": "1"})

	// a change while powered on reaches the running container
	n := count(calls(), cpCall)
	reconfigure("guestinfo.a", "2")
	wantCopied("reconfigure while on", n, map[string]string{"guestinfo.a": "2"})

	// a change while powered off reaches the stopped container
	wait(vm.PowerOff(ctx))
	n = count(calls(), cpCall)
	reconfigure("guestinfo.b", "x")
	wantCopied("reconfigure while off", n, map[string]string{"guestinfo.a": "2", "guestinfo.b": "x"})

	// an extraConfig key other than guestinfo.* writes nothing
	n = count(calls(), cpCall)
	reconfigure("other.key", "y")
	if got := count(calls(), cpCall); got != n {
		t.Errorf("reconfigure of other.key: %d docker cp, want %d", got, n)
	}

	// power on again (docker start of the same container): the latest guestinfo first
	wait(vm.PowerOn(ctx))
	creates := 0
	for _, l := range calls() {
		if strings.HasPrefix(l, "create ") {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d docker create, want 1 (power on starts the existing container)", creates)
	}
	wantCopiedBeforeStart("second power-on", map[string]string{"guestinfo.a": "2", "guestinfo.b": "x"})
}
