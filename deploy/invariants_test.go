package deploy

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// recorder is a tb that keeps what the checks report. Fatal ends the
// goroutine, as it does in a test.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Error(args ...any) { r.add(fmt.Sprint(args...)) }

func (r *recorder) Errorf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }

func (r *recorder) Fatal(args ...any) {
	r.add(fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.add(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recorder) add(m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

// runChecks runs checkDaemonSet on o and returns what it reported.
func runChecks(o objects, flags masqdFlags) []string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkDaemonSet(r, o, flags)
	}()
	<-done
	return r.msgs
}

// dsContainer and dsPod are the parts of the DaemonSet brokenDaemonSets change.
func dsContainer(o objects) *corev1.Container { return &o.daemonSet.Spec.Template.Spec.Containers[0] }
func dsPod(o objects) *corev1.PodSpec         { return &o.daemonSet.Spec.Template.Spec }

// setArg sets the container's --name flag to value.
func setArg(o objects, name, value string) {
	c := dsContainer(o)
	c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--"+name+"=") })
	c.Args = append(c.Args, "--"+name+"="+value)
}

// brokenDaemonSets each break one invariant of the base, and name the message that must catch it.
var brokenDaemonSets = []struct {
	name   string
	mutate func(o objects)
	want   string
}{
	{"privileged", func(o objects) { dsContainer(o).SecurityContext.Privileged = ptr.To(true) }, "privileged must be false"},
	{"escalation", func(o objects) { dsContainer(o).SecurityContext.AllowPrivilegeEscalation = nil }, "allowPrivilegeEscalation"},
	{"writable root", func(o objects) { dsContainer(o).SecurityContext.ReadOnlyRootFilesystem = ptr.To(false) }, "readOnlyRootFilesystem"},
	{"non-root", func(o objects) { dsContainer(o).SecurityContext.RunAsNonRoot = ptr.To(true) }, "runAsNonRoot"},
	{"another capability", func(o objects) {
		caps := dsContainer(o).SecurityContext.Capabilities
		caps.Add = append(caps.Add, "SYS_ADMIN")
	}, "capabilities"},
	{"capabilities kept", func(o objects) { dsContainer(o).SecurityContext.Capabilities.Drop = nil }, "capabilities"},
	{"no seccomp", func(o objects) { dsContainer(o).SecurityContext.SeccompProfile = nil }, "seccompProfile"},
	{"pod network", func(o objects) { dsPod(o).HostNetwork = false }, "hostNetwork"},
	{"host PID", func(o objects) { dsPod(o).HostPID = true }, "hostPID"},
	{"dns policy", func(o objects) { dsPod(o).DNSPolicy = corev1.DNSClusterFirst }, "dnsPolicy"},
	{"priority", func(o objects) { dsPod(o).PriorityClassName = "" }, "priorityClassName"},
	{"grace", func(o objects) { dsPod(o).TerminationGracePeriodSeconds = ptr.To[int64](30) }, "terminationGracePeriodSeconds"},
	{"token", func(o objects) { dsPod(o).AutomountServiceAccountToken = nil }, "automountServiceAccountToken"},
	{"service account", func(o objects) { o.serviceAccount.Name = "other" }, "serviceAccountName"},
	{"node selector", func(o objects) { delete(dsPod(o).NodeSelector, "node.kubernetes.io/masq-agent-ds-ready") }, "nodeSelector"},
	{"NoExecute taints", func(o objects) { dsPod(o).Tolerations = dsPod(o).Tolerations[:1] }, "no toleration of taint node.kubernetes.io/not-ready"},
	{"eviction", func(o objects) { dsPod(o).Tolerations[1].TolerationSeconds = ptr.To[int64](300) }, "tolerationSeconds"},
	{"host path", func(o objects) {
		dsPod(o).Volumes = append(dsPod(o).Volumes, corev1.Volume{Name: "run", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/run"}}})
	}, "host path"},
	{"selector", func(o objects) { o.daemonSet.Spec.Template.Labels = map[string]string{"app": "other"} }, "does not select"},
	{"surge", func(o objects) { o.daemonSet.Spec.UpdateStrategy.RollingUpdate.MaxSurge = ptr.To(intstr.FromInt32(1)) }, "maxSurge"},
	{"unavailable", func(o objects) {
		o.daemonSet.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = ptr.To(intstr.FromString("50%"))
	}, "maxUnavailable"},
	{"cpu limit", func(o objects) { dsContainer(o).Resources.Limits[corev1.ResourceCPU] = resource.MustParse("100m") }, "resources"},
	{"no memory limit", func(o objects) { dsContainer(o).Resources.Limits = nil }, "resources"},
	{"no GOMEMLIMIT", func(o objects) { dsContainer(o).Env = nil }, "want only GOMEMLIMIT"},
	{"GOMEMLIMIT from requests", func(o objects) { dsContainer(o).Env[0].ValueFrom.ResourceFieldRef.Resource = "requests.memory" }, "limits.memory"},
	{"console logs", func(o objects) { setArg(o, "log-format", "console") }, "--log-format"},
	{"unknown flag", func(o objects) { dsContainer(o).Args = append(dsContainer(o).Args, "--no-such-flag") }, "masqd has no flag --no-such-flag"},
	{"flag twice", func(o objects) { dsContainer(o).Args = append(dsContainer(o).Args, "--log-format=json") }, "given twice"},
	{"health elsewhere", func(o objects) { setArg(o, "health-bind-address", "0.0.0.0:9999") }, "serves health on port 9999"},
	{"health on loopback", func(o objects) { setArg(o, "health-bind-address", "127.0.0.1:9762") }, "kubelet probes the node IP"},
	{"metrics on loopback", func(o objects) { setArg(o, "metrics-bind-address", "127.0.0.1:9761") }, "Prometheus cannot scrape"},
	{"metrics default", func(o objects) {
		c := dsContainer(o)
		c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--metrics-bind-address=") })
	}, "Prometheus cannot scrape"},
	{"liveness port", func(o objects) { dsContainer(o).LivenessProbe.HTTPGet.Port = intstr.FromInt32(9761) }, "livenessProbe"},
	{"readiness path", func(o objects) { dsContainer(o).ReadinessProbe.HTTPGet.Path = "/healthz" }, "readinessProbe"},
	{"no readiness", func(o objects) { dsContainer(o).ReadinessProbe = nil }, "readinessProbe must be"},
	{"metrics port undeclared", func(o objects) { dsContainer(o).Ports = dsContainer(o).Ports[:1] }, "ports ="},
	{"scrape port", func(o objects) { o.daemonSet.Spec.Template.Annotations["prometheus.io/port"] = "8080" }, "prometheus annotations"},
	{"config elsewhere", func(o objects) { dsContainer(o).VolumeMounts[0].MountPath = "/etc/masqd" }, "lands at /etc/masqd/ip-masq-agent"},
	{"config flag", func(o objects) { setArg(o, "config", "/etc/masqd/config") }, "want internal/config.DefaultPath"},
	{"config required", func(o objects) { dsPod(o).Volumes[0].ConfigMap.Optional = nil }, "must be optional"},
	{"config map renamed", func(o objects) { dsPod(o).Volumes[0].ConfigMap.Name = "masqd" }, "no volume of ConfigMap"},
	{"config subPath", func(o objects) { dsContainer(o).VolumeMounts[0].SubPath = "ip-masq-agent" }, "no subPath"},
}

// TestChecksCatchBrokenDaemonSets breaks one invariant at a time and expects
// checkDaemonSet to say so: the checks that pass on the real manifest are
// not vacuous.
func TestChecksCatchBrokenDaemonSets(t *testing.T) {
	flags := masqdFlags{source: "the documented defaults", defaults: documentedFlags}
	if errs := runChecks(readBase(t), flags); len(errs) > 0 {
		t.Fatalf("the base itself fails: %v", errs)
	}
	for _, tt := range brokenDaemonSets {
		t.Run(tt.name, func(t *testing.T) {
			o := readBase(t)
			tt.mutate(o)
			errs := runChecks(o, flags)
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tt.want) }) {
				t.Errorf("checks reported %q, want a message containing %q", errs, tt.want)
			}
		})
	}
}
