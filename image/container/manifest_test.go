package container

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifestPath is the DaemonSet whose container the tests run.
const manifestPath = "../../deploy/daemonset.yaml"

// podSpec is what the tests take from the DaemonSet: the parts of the
// container spec a runtime applies, resolved as kubelet resolves them.
type podSpec struct {
	// command replaces the image's entrypoint when set; args follow it.
	command, args []string
	// env is the container's environment, values resolved.
	env []string
	// caps are the capabilities the process has (bounding, permitted and
	// effective), after drop and add.
	caps                []string
	uid                 *uint32
	noNewPrivileges     bool
	readOnlyRoot        bool
	memoryLimit         int64 // bytes, 0 when none
	configMountPath     string
	configItem          string // the file name of the ConfigMap's key
	liveness, readiness probe
	gracePeriodSeconds  int64
	hostNetwork         bool
}

// probe is an httpGet probe: where and how often kubelet asks.
type probe struct {
	path             string
	port             int
	period           time.Duration
	failureThreshold int
}

// runtimeDefaultCaps are the capabilities containerd and CRI-O give a
// container before its securityContext drops or adds any.
var runtimeDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// readPodSpec reads the DaemonSet at path strictly and resolves its only
// container's spec. Anything the tests cannot apply faithfully is an
// error that names it, never ignored.
func readPodSpec(t *testing.T, path string) podSpec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(data, &ds); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	spec, err := resolve(ds)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return spec
}

func resolve(ds appsv1.DaemonSet) (podSpec, error) {
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) > 0 {
		return podSpec{}, fmt.Errorf("%d containers and %d init containers: the test runs exactly one container", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	s := podSpec{hostNetwork: pod.HostNetwork, command: c.Command}
	if pod.TerminationGracePeriodSeconds == nil {
		s.gracePeriodSeconds = 30 // the API server's default
	} else {
		s.gracePeriodSeconds = *pod.TerminationGracePeriodSeconds
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		s.memoryLimit = q.Value()
	}

	if err := s.resolveEnv(c); err != nil {
		return s, err
	}
	if err := s.resolveSecurity(pod, c); err != nil {
		return s, err
	}

	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = int(p.ContainerPort)
	}
	var err error
	if s.liveness, err = httpProbe("livenessProbe", c.LivenessProbe, ports); err != nil {
		return s, err
	}
	if s.readiness, err = httpProbe("readinessProbe", c.ReadinessProbe, ports); err != nil {
		return s, err
	}

	err = s.resolveConfigMount(pod, c)
	return s, err
}

// resolveEnv sets the container's environment, as kubelet fills it, and
// its arguments with $(VAR) expanded.
func (s *podSpec) resolveEnv(c corev1.Container) error {
	vars := map[string]string{}
	for _, e := range c.Env {
		v := expand(e.Value, vars)
		if f := e.ValueFrom; f != nil {
			r := f.ResourceFieldRef
			if r == nil || f.FieldRef != nil || f.ConfigMapKeyRef != nil || f.SecretKeyRef != nil {
				return fmt.Errorf("env %s: only resourceFieldRef is emulated here; extend resolve() for %+v", e.Name, f)
			}
			if r.ContainerName != "" && r.ContainerName != c.Name {
				return fmt.Errorf("env %s: resourceFieldRef of another container %q", e.Name, r.ContainerName)
			}
			q, err := resourceValue(c.Resources, r.Resource, r.Divisor)
			if err != nil {
				return fmt.Errorf("env %s: %w", e.Name, err)
			}
			v = q
		}
		vars[e.Name] = v
		s.env = append(s.env, e.Name+"="+v)
	}
	if len(c.EnvFrom) > 0 {
		return fmt.Errorf("envFrom is not emulated here")
	}
	for _, a := range c.Args {
		s.args = append(s.args, expand(a, vars))
	}
	return nil
}

// resolveSecurity sets the capabilities, user and flags that kubelet
// derives from the security contexts.
func (s *podSpec) resolveSecurity(pod corev1.PodSpec, c corev1.Container) error {
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.Privileged != nil && *sc.Privileged {
		return fmt.Errorf("privileged containers are not emulated here")
	}
	caps := slices.Clone(runtimeDefaultCaps)
	if sc.Capabilities != nil {
		for _, d := range sc.Capabilities.Drop {
			if d == "ALL" {
				caps = nil
				continue
			}
			caps = slices.DeleteFunc(caps, func(c string) bool { return c == "CAP_"+string(d) })
		}
		for _, a := range sc.Capabilities.Add {
			if !slices.Contains(caps, "CAP_"+string(a)) {
				caps = append(caps, "CAP_"+string(a))
			}
		}
	}
	s.caps = caps
	if sc.RunAsUser != nil {
		uid := uint32(*sc.RunAsUser)
		s.uid = &uid
	} else if psc := pod.SecurityContext; psc != nil && psc.RunAsUser != nil {
		uid := uint32(*psc.RunAsUser)
		s.uid = &uid
	}
	// kubelet sets no_new_privs unless allowPrivilegeEscalation is true (or
	// unset on a container that may escalate anyway).
	s.noNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	s.readOnlyRoot = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	return nil
}

// resolveConfigMount sets where the one ConfigMap volume is mounted.
func (s *podSpec) resolveConfigMount(pod corev1.PodSpec, c corev1.Container) error {
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == m.Name {
				vol = &pod.Volumes[i]
			}
		}
		if vol == nil || vol.ConfigMap == nil {
			return fmt.Errorf("volume mount %q: only ConfigMap volumes are emulated here", m.Name)
		}
		if s.configMountPath != "" {
			return fmt.Errorf("volume mount %q: a second ConfigMap volume", m.Name)
		}
		if m.SubPath != "" || !m.ReadOnly || len(vol.ConfigMap.Items) != 1 {
			return fmt.Errorf("volume mount %q: want read-only, no subPath, one item", m.Name)
		}
		s.configMountPath, s.configItem = m.MountPath, vol.ConfigMap.Items[0].Path
	}
	if s.configMountPath == "" {
		return fmt.Errorf("no ConfigMap volume is mounted")
	}
	return nil
}

// varRE is a $(NAME) reference, which kubelet expands in env values and args.
var varRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func expand(s string, vars map[string]string) string {
	return varRE.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// resourceValue is the downward API's value of a resource field: the
// quantity divided by the divisor (default 1), rounded up.
func resourceValue(r corev1.ResourceRequirements, field string, divisor resource.Quantity) (string, error) {
	kind, name, ok := strings.Cut(field, ".")
	list := r.Limits
	if kind == "requests" {
		list = r.Requests
	} else if kind != "limits" || !ok {
		return "", fmt.Errorf("resource field %q", field)
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		// kubelet substitutes the node's allocatable; the test has no node.
		return "", fmt.Errorf("%s is not set, and the node's allocatable is not emulated", field)
	}
	d := int64(1)
	if !divisor.IsZero() {
		d = divisor.Value()
	}
	return strconv.FormatInt((q.Value()+d-1)/d, 10), nil
}

func httpProbe(name string, p *corev1.Probe, ports map[string]int) (probe, error) {
	if p == nil || p.HTTPGet == nil {
		return probe{}, fmt.Errorf("%s: want an httpGet probe", name)
	}
	g := p.HTTPGet
	if g.Host != "" || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) {
		return probe{}, fmt.Errorf("%s: only http on the pod IP is emulated", name)
	}
	port := g.Port.IntValue()
	if g.Port.Type == intstr.String {
		var ok bool
		if port, ok = ports[g.Port.StrVal]; !ok {
			return probe{}, fmt.Errorf("%s: no container port named %q", name, g.Port.StrVal)
		}
	}
	// The API server's defaults: every 10 s, 3 failures.
	pr := probe{path: path.Clean("/" + g.Path), port: port, period: 10 * time.Second, failureThreshold: 3}
	if p.PeriodSeconds > 0 {
		pr.period = time.Duration(p.PeriodSeconds) * time.Second
	}
	if p.FailureThreshold > 0 {
		pr.failureThreshold = int(p.FailureThreshold)
	}
	return pr, nil
}
