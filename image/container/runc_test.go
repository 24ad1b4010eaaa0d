package container

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/masqd/masqd/image"
	"github.com/masqd/masqd/test/e2e/testbed"
)

// runcRoot is where runc keeps the state of this package's containers.
const runcRoot = "/run/masqd-e2e-runc"

// idPrefix starts every container id; the creating PID, a random tag and a
// counter follow, so that ids never repeat and stale ones are recognised.
const idPrefix = "masqd-e2e-"

var (
	runTag = strings.ToLower(rand.Text()[:6])
	nextID atomic.Int64
)

// skipUnlessRunnable skips the test, with the reason, where containers
// cannot run: not root, no runc or umoci, no ip or nft for the bed.
func skipUnlessRunnable(t *testing.T) {
	t.Helper()
	if why := testbed.Skip(); why != "" {
		t.Skip("container test skipped: " + why)
	}
	for _, bin := range []string{"runc", "umoci"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("container test skipped: %s is not installed (apt-get install -y runc umoci)", bin)
		}
	}
}

var (
	imageOnce   sync.Once
	imageLayout string // an OCI layout directory
	imageRef    string // the image's ref.name in it
	imageErr    error
	builtDir    string // removed by TestMain
)

// testImage returns the OCI layout and tag of the image under test:
// MASQD_IMAGE (make image's dist/masqd-oci, as hack/test.sh passes it),
// or one built here from MASQD_BIN, or from a masqd built for this run.
func testImage(t *testing.T) (layout, ref string) {
	t.Helper()
	imageOnce.Do(func() {
		if dir := os.Getenv("MASQD_IMAGE"); dir != "" {
			imageLayout = dir
			imageRef, imageErr = onlyRef(dir)
			return
		}
		builtDir, imageErr = os.MkdirTemp("", "masqd-container-image")
		if imageErr != nil {
			return
		}
		bin := os.Getenv("MASQD_BIN")
		if bin == "" {
			bin = filepath.Join(builtDir, "masqd")
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/masqd")
			cmd.Dir = "../.."
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				imageErr = fmt.Errorf("build masqd: %w\n%s", err, out)
				return
			}
		}
		var img v1.Image
		if img, imageErr = image.Build(image.Options{Binary: bin, Version: "test"}); imageErr != nil {
			return
		}
		out := image.OutputsIn(builtDir)
		imageLayout, imageRef = out.Layout, "test"
		imageErr = image.Write(img, "test", out)
	})
	if imageErr != nil {
		t.Fatalf("image under test: %v", imageErr)
	}
	return imageLayout, imageRef
}

// onlyRef returns the tag of the one image in an OCI layout.
func onlyRef(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", fmt.Errorf("MASQD_IMAGE=%s: %w (run make image)", dir, err)
	}
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return "", fmt.Errorf("MASQD_IMAGE=%s: index.json: %w", dir, err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations[image.RefNameAnnotation] == "" {
		return "", fmt.Errorf("MASQD_IMAGE=%s: want one tagged image, the index lists %d", dir, len(index.Manifests))
	}
	return index.Manifests[0].Annotations[image.RefNameAnnotation], nil
}

// bundle is an unpacked image: its rootfs, and the runtime spec umoci
// derived from the image config (entrypoint, user, the runtime's default
// mounts and namespaces), before the pod spec is applied.
type bundle struct {
	dir             string
	base            specs.Spec
	entrypoint, cmd []string
	imageEnv        []string
}

// unpack unpacks the image under test into a fresh bundle with umoci.
func unpack(t *testing.T) *bundle {
	t.Helper()
	layout, ref := testImage(t)
	dir := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command("umoci", "unpack", "--image", layout+":"+ref, dir).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack --image %s:%s: %v\n%s", layout, ref, err, out)
	}
	b := &bundle{dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &b.base); err != nil {
		t.Fatalf("umoci's config.json: %v", err)
	}
	img, err := image.ReadLayout(layout, ref)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	b.entrypoint, b.cmd, b.imageEnv = cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.Env
	return b
}

// runOpts vary a run for the memory measurement.
type runOpts struct {
	// noMemoryLimit runs without the cgroup limit and without GOMEMLIMIT,
	// to see what the agent takes when nothing holds it back.
	noMemoryLimit bool
}

// spec applies the pod spec to the bundle's base spec, as kubelet and a CRI
// runtime would for a hostNetwork pod on the bed's node.
func (b *bundle) spec(pod podSpec, bed *testbed.Bed, id, configDir string, o runOpts) (specs.Spec, error) {
	var s specs.Spec
	data, err := json.Marshal(b.base)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, err
	}
	if !pod.hostNetwork {
		return s, errors.New("the pod is not hostNetwork: this test runs masqd in the node's namespace only")
	}
	p := s.Process
	p.Terminal = false
	switch {
	case len(pod.command) > 0:
		p.Args = slices.Concat(pod.command, pod.args)
	case len(pod.args) > 0:
		p.Args = slices.Concat(b.entrypoint, pod.args)
	default:
		p.Args = slices.Concat(b.entrypoint, b.cmd)
	}
	if len(p.Args) == 0 {
		return s, errors.New("the image has no entrypoint and the pod no command")
	}
	env := slices.Clone(b.imageEnv)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	for _, e := range pod.env {
		if o.noMemoryLimit && strings.HasPrefix(e, "GOMEMLIMIT=") {
			continue
		}
		env = append(env, e)
	}
	p.Env = env
	if pod.uid != nil {
		p.User.UID = *pod.uid
	}
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding:  slices.Clone(pod.caps),
		Effective: slices.Clone(pod.caps),
		Permitted: slices.Clone(pod.caps),
	}
	p.NoNewPrivileges = pod.noNewPrivileges
	s.Root.Readonly = pod.readOnlyRoot
	s.Hostname = id
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			s.Linux.Namespaces[i].Path = bed.NodePath()
		}
	}
	s.Mounts = append(s.Mounts, specs.Mount{
		Destination: pod.configMountPath, Type: "bind", Source: configDir, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"},
	})
	s.Linux.CgroupsPath = "/" + id
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if pod.memoryLimit > 0 && !o.noMemoryLimit {
		limit := pod.memoryLimit
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}
	return s, nil
}

// container is one runc container, run in the foreground by `runc run`.
type container struct {
	id, log string
	cmd     *exec.Cmd
	done    chan struct{} // closed when runc run returned
	err     error         // its exit status, once done is closed
}

// start runs the image as pod says, in bed's node namespace, with the
// ConfigMap volume at configDir. The container is deleted when the test
// ends, whatever happened.
func (b *bundle) start(t *testing.T, pod podSpec, bed *testbed.Bed, configDir string, o runOpts) *container {
	t.Helper()
	id := fmt.Sprintf("%s%d-%s-%d", idPrefix, os.Getpid(), runTag, nextID.Add(1))
	s, err := b.spec(pod, bed, id, configDir, o)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	c := &container{id: id, log: logs.Name(), done: make(chan struct{})}
	c.cmd = exec.Command("runc", "--root", runcRoot, "run", "--bundle", b.dir, id)
	c.cmd.Stdout, c.cmd.Stderr = logs, logs
	// Should this test process die, runc dies with it; the container it
	// leaves is deleted by the next run (removeStale).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("runc run %s: %v", id, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		if err := c.remove(); err != nil {
			t.Errorf("delete container %s: %v", id, err)
		}
		if t.Failed() {
			out, _ := os.ReadFile(c.log)
			t.Logf("container %s output:\n%s", id, out)
		}
	})
	return c
}

// exited reports whether the container has stopped, and how.
func (c *container) exited() (bool, error) {
	select {
	case <-c.done:
		return true, c.err
	default:
		return false, nil
	}
}

// signal sends sig to the container's process through the runtime, as
// kubelet's StopContainer does.
func (c *container) signal(sig string) error {
	if out, err := exec.Command("runc", "--root", runcRoot, "kill", c.id, sig).CombinedOutput(); err != nil {
		return fmt.Errorf("runc kill %s %s: %w: %s", c.id, sig, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// stop sends SIGTERM and waits up to grace for the container to end, as
// kubelet does; it returns how long that took and the exit status.
func (c *container) stop(grace time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := c.signal("TERM"); err != nil {
		return 0, err
	}
	select {
	case <-c.done:
		return time.Since(start), c.err
	case <-time.After(grace):
		return time.Since(start), fmt.Errorf("container %s still running %v after SIGTERM (terminationGracePeriodSeconds)", c.id, grace)
	}
}

// pid is the container's process in this PID namespace.
func (c *container) pid() (int, error) {
	out, err := exec.Command("runc", "--root", runcRoot, "state", c.id).Output()
	if err != nil {
		return 0, fmt.Errorf("runc state %s: %w", c.id, err)
	}
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("runc state %s: %w", c.id, err)
	}
	if st.Pid == 0 {
		return 0, fmt.Errorf("runc state %s: %s, no process", c.id, st.Status)
	}
	return st.Pid, nil
}

// remove kills and deletes the container and waits for runc to return.
func (c *container) remove() error {
	var errs []error
	if done, _ := c.exited(); !done {
		out, err := exec.Command("runc", "--root", runcRoot, "delete", "--force", c.id).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "does not exist") {
			errs = append(errs, fmt.Errorf("runc delete --force %s: %w: %s", c.id, err, strings.TrimSpace(string(out))))
		}
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
			errs = append(errs, fmt.Errorf("runc run %s did not return 10 s after delete --force", c.id))
		}
	}
	// `runc run` deletes its container when it returns; make sure.
	out, err := exec.Command("runc", "--root", runcRoot, "delete", "--force", c.id).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not exist") {
		errs = append(errs, fmt.Errorf("runc delete --force %s: %w: %s", c.id, err, strings.TrimSpace(string(out))))
	}
	return errors.Join(errs...)
}

// staleID matches this package's container ids: prefix, PID, tag, counter.
var staleID = regexp.MustCompile(`^` + regexp.QuoteMeta(idPrefix) + `([0-9]+)-[a-z0-9]+-[0-9]+$`)

// removeStale deletes the containers of runs whose process is gone (a
// SIGKILL or a test binary timeout skips the cleanups). It touches no other
// container: only ids this package makes, under its own runc root.
func removeStale() error {
	if _, err := os.Stat(runcRoot); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := exec.Command("runc", "--root", runcRoot, "list", "--format", "json").Output()
	if err != nil {
		return fmt.Errorf("runc list: %w", err)
	}
	var list []specs.State
	if err := json.Unmarshal(out, &list); err != nil && len(strings.TrimSpace(string(out))) > 0 && strings.TrimSpace(string(out)) != "null" {
		return fmt.Errorf("runc list: %w", err)
	}
	var errs []error
	for _, st := range list {
		m := staleID.FindStringSubmatch(st.ID)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		if out, err := exec.Command("runc", "--root", runcRoot, "delete", "--force", st.ID).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("runc delete --force %s: %w: %s", st.ID, err, out))
		}
	}
	return errors.Join(errs...)
}

// prober asks the container's health server what kubelet's probes ask: an
// HTTP GET on the pod IP (the node's, with hostNetwork), from the node.
type prober struct {
	client *http.Client
}

func newProber(bed *testbed.Bed) *prober {
	return &prober{client: &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return bed.Dial(ctx, bed.NodeNS, network, addr)
			},
		},
	}}
}

// get returns the status and body of the probe's GET.
func (p *prober) get(pr probe) (int, string, error) {
	url := fmt.Sprintf("http://%s%s", net.JoinHostPort(testbed.NodeIP4.String(), strconv.Itoa(pr.port)), pr.path)
	resp, err := p.client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// waitProbe waits until the probe answers 200, failing at once when the
// container ends first.
func waitProbe(t *testing.T, p *prober, c *container, pr probe, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < within {
		if done, err := c.exited(); done {
			hint := ""
			if strings.Contains(fmt.Sprint(err), "exit status 137") {
				hint = " (SIGKILL: under a memory limit, the OOM killer)"
			}
			t.Fatalf("container %s exited (%v)%s before GET %s:%d%s answered 200", c.id, err, hint, testbed.NodeIP4, pr.port, pr.path)
		}
		code, body, err := p.get(pr)
		if err == nil && code == http.StatusOK {
			return time.Since(start)
		}
		last = fmt.Sprintf("%d %q %v", code, body, err)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("container %s: GET %s:%d%s did not answer 200 within %v; last: %s", c.id, testbed.NodeIP4, pr.port, pr.path, within, last)
	return 0
}

var restartCount = flag.Int("restarts", 10, "containers TestRollingUpdate replaces, one after the other, under traffic")
