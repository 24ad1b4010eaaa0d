package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// The names the manifests and masqd agree on.
const (
	namespace     = "kube-system"
	appName       = "masqd"
	configMapName = "ip-masq-agent" // ip-masq-agent's ConfigMap, reused as is
	configMapKey  = "config"
	imageRepo     = "ghcr.io/masqd/masqd" // image.Repository of ../image
	exampleConfig = "examples/ip-masq-agent-configmap.yaml"
)

// tb is the part of testing.TB the invariant checks use, so that a test can
// run them against a broken DaemonSet and read what they report.
type tb interface {
	Helper()
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// objects are the manifests of the base, decoded.
type objects struct {
	serviceAccount *corev1.ServiceAccount
	configMap      *corev1.ConfigMap // nil in the base, which must not replace the cluster's own
	daemonSet      *appsv1.DaemonSet
}

// decodeStrict decodes one YAML document into out, failing on unknown and
// duplicate fields, as the API server's strict field validation does.
func decodeStrict(data []byte, out any) error {
	return yaml.UnmarshalStrict(data, out)
}

// splitDocuments splits a YAML stream at its "---" separators and drops
// empty documents.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// decodeObjects decodes a stream of manifests into objects, each strictly
// into the API type its apiVersion and kind name. Any other kind, or a kind
// twice, is an error.
func decodeObjects(docs [][]byte) (objects, error) {
	var o objects
	for i, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return o, fmt.Errorf("document %d: %w", i+1, err)
		}
		var out any
		switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
		case "v1 ServiceAccount":
			if o.serviceAccount != nil {
				return o, fmt.Errorf("document %d: a second ServiceAccount", i+1)
			}
			o.serviceAccount = &corev1.ServiceAccount{}
			out = o.serviceAccount
		case "v1 ConfigMap":
			if o.configMap != nil {
				return o, fmt.Errorf("document %d: a second ConfigMap", i+1)
			}
			o.configMap = &corev1.ConfigMap{}
			out = o.configMap
		case "apps/v1 DaemonSet":
			if o.daemonSet != nil {
				return o, fmt.Errorf("document %d: a second DaemonSet", i+1)
			}
			o.daemonSet = &appsv1.DaemonSet{}
			out = o.daemonSet
		default:
			return o, fmt.Errorf("document %d: unexpected %q", i+1, gvk)
		}
		if err := decodeStrict(doc, out); err != nil {
			return o, fmt.Errorf("document %d (%s): %w", i+1, tm.Kind, err)
		}
	}
	if o.serviceAccount == nil || o.daemonSet == nil {
		return o, fmt.Errorf("want a ServiceAccount and a DaemonSet, got %d documents without them", len(docs))
	}
	return o, nil
}

// readKustomization strictly decodes deploy/kustomization.yaml.
func readKustomization(t *testing.T) kusttypes.Kustomization {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k kusttypes.Kustomization
	if err := decodeStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// readBase decodes every file the kustomization lists. The base installs no
// ConfigMap: `kubectl apply -k` would replace the cluster's ip-masq-agent
// ConfigMap, and with it a migrating operator's egress policy.
func readBase(t *testing.T) objects {
	t.Helper()
	var docs [][]byte
	for _, r := range readKustomization(t).Resources {
		data, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, splitDocuments(data)...)
	}
	o, err := decodeObjects(docs)
	if err != nil {
		t.Fatal(err)
	}
	if o.configMap != nil {
		t.Fatalf("the base installs ConfigMap %s/%s: kubectl apply -k would replace the cluster's own; keep it in %s", o.configMap.Namespace, o.configMap.Name, exampleConfig)
	}
	return o
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	k := readKustomization(t)
	if k.APIVersion != kusttypes.KustomizationVersion || k.Kind != kusttypes.KustomizationKind {
		t.Errorf("kustomization.yaml is %s %s, want %s %s", k.APIVersion, k.Kind, kusttypes.KustomizationVersion, kusttypes.KustomizationKind)
	}
	if k.Namespace != namespace {
		t.Errorf("kustomization namespace = %q, want %q", k.Namespace, namespace)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization resources = %v, want every manifest in deploy/: %v", listed, files)
	}
}

func TestManifestsDecodeStrictly(t *testing.T) {
	o := readBase(t)
	for _, m := range []metav1.ObjectMeta{o.serviceAccount.ObjectMeta, readExampleConfigMap(t).ObjectMeta, o.daemonSet.ObjectMeta} {
		if m.Namespace != namespace {
			t.Errorf("%s: namespace %q, want %q", m.Name, m.Namespace, namespace)
		}
		if m.Labels["app.kubernetes.io/name"] != appName {
			t.Errorf("%s: label app.kubernetes.io/name = %q, want %q", m.Name, m.Labels["app.kubernetes.io/name"], appName)
		}
	}
}

func TestServiceAccount(t *testing.T) {
	sa := readBase(t).serviceAccount
	if sa.Name != appName {
		t.Errorf("ServiceAccount name = %q, want %q", sa.Name, appName)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount must set automountServiceAccountToken: false: masqd needs no API access")
	}
	if len(sa.Secrets) > 0 || len(sa.ImagePullSecrets) > 0 {
		t.Error("ServiceAccount must carry no secrets")
	}
}

// ipMasqAgentConfig is ip-masq-agent's config file, for the example.
type ipMasqAgentConfig struct {
	NonMasqueradeCIDRs []string `json:"nonMasqueradeCIDRs"`
	MasqLinkLocal      *bool    `json:"masqLinkLocal"`
	ResyncInterval     string   `json:"resyncInterval"`
}

// readExampleConfigMap strictly decodes the example ConfigMap beside the base.
func readExampleConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := decodeStrict(data, &cm); err != nil {
		t.Fatalf("%s: %v", exampleConfig, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" {
		t.Fatalf("%s is %s %s, want v1 ConfigMap", exampleConfig, cm.APIVersion, cm.Kind)
	}
	return &cm
}

func TestExampleConfigMap(t *testing.T) {
	cm := readExampleConfigMap(t)
	if cm.Namespace != namespace {
		t.Errorf("example ConfigMap namespace = %q, want %q", cm.Namespace, namespace)
	}
	// The example must be what the DaemonSet mounts.
	o := readBase(t)
	o.configMap = cm
	checkDaemonSet(t, o, loadMasqdFlags(t))
	if cm.Name != configMapName {
		t.Errorf("ConfigMap name = %q, want ip-masq-agent's %q", cm.Name, configMapName)
	}
	if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		t.Fatalf("ConfigMap holds %d keys, want only %q", len(cm.Data)+len(cm.BinaryData), configMapKey)
	}
	text, ok := cm.Data[configMapKey]
	if !ok {
		t.Fatalf("ConfigMap has no key %q", configMapKey)
	}

	var keys map[string]any
	if err := decodeStrict([]byte(text), &keys); err != nil {
		t.Fatalf("config: %v", err)
	}
	known := configKeys(t)
	for k := range keys {
		if !slices.Contains(known, k) {
			t.Errorf("config key %q is not one internal/config accepts (%v)", k, known)
		}
	}

	var c ipMasqAgentConfig
	if err := decodeStrict([]byte(text), &c); err != nil {
		t.Fatalf("config: %v", err)
	}
	var cidrs []netip.Prefix
	for _, s := range c.NonMasqueradeCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() {
			t.Errorf("nonMasqueradeCIDRs entry %q is not a masked prefix", s)
		}
		cidrs = append(cidrs, p)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
	if !slices.Equal(cidrs, want) {
		t.Errorf("nonMasqueradeCIDRs = %v, want %v", cidrs, want)
	}
	if c.MasqLinkLocal == nil || *c.MasqLinkLocal {
		t.Error("masqLinkLocal must be set, to false")
	}
	if d, err := time.ParseDuration(c.ResyncInterval); err != nil || d != time.Minute {
		t.Errorf("resyncInterval = %q, want 60s", c.ResyncInterval)
	}
}

func TestDaemonSet(t *testing.T) {
	o := readBase(t)
	checkDaemonSet(t, o, loadMasqdFlags(t))
	checkBaseImage(t, o.daemonSet.Spec.Template.Spec.Containers[0].Image)
}

// tagRE is a release tag: the base runs a release, never a moving tag.
var tagRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// checkBaseImage checks the base's image: masqd's repository and a release
// tag, which `make image` on that release's git tag builds.
func checkBaseImage(t tb, img string) {
	t.Helper()
	repo, tag, ok := strings.Cut(img, ":")
	if !ok || repo != imageRepo || !tagRE.MatchString(tag) {
		t.Errorf("image = %q, want %s:vX.Y.Z, a release (overlays pick another with images:)", img, imageRepo)
	}
}

// latestRE is an image reference with the moving tag :latest.
var latestRE = regexp.MustCompile(`[A-Za-z0-9._/-]+:latest\b`)

// TestNoLatestTag: nothing the user reads or applies names a moving tag.
func TestNoLatestTag(t *testing.T) {
	files := []string{"README.md", filepath.Join(repoRoot, "README.md"), filepath.Join(repoRoot, "Dockerfile")}
	yamls, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob("examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(append(files, yamls...), more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if latestRE.MatchString(line) {
				t.Errorf("%s:%d names a :latest image: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// checkDaemonSet checks every invariant of masqd's DaemonSet except its
// image, which overlays change; o's ServiceAccount and ConfigMap (when
// present) must be the ones it references.
func checkDaemonSet(t tb, o objects, flags masqdFlags) {
	t.Helper()
	ds := o.daemonSet
	if ds.Name != appName || ds.Namespace != namespace {
		t.Errorf("DaemonSet is %s/%s, want %s/%s", ds.Namespace, ds.Name, namespace, appName)
	}

	checkRollout(t, ds)

	pod := ds.Spec.Template.Spec
	checkPod(t, o, pod)
	if len(pod.InitContainers) > 0 || len(pod.Containers) != 1 {
		t.Fatalf("want exactly one container and no init containers, got %d and %d", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	checkSecurityContext(t, c.SecurityContext)
	checkResources(t, c.Resources)
	checkEnv(t, c)

	args := parseArgs(t, c, flags)
	if args["log-format"] != "json" {
		t.Errorf("--log-format = %q, want json", args["log-format"])
	}
	effective := func(name string) string {
		if v, ok := args[name]; ok {
			return v
		}
		return flags.defaultOf(t, name)
	}

	checkServing(t, ds, c, effective)

	checkConfigMount(t, o, c, effective("config"))
}

// checkRollout checks that the selector selects the pods and that a
// rollout replaces them a few nodes at a time, never two on one node.
func checkRollout(t tb, ds *appsv1.DaemonSet) {
	t.Helper()
	// The selector must select the pods, or the API server rejects it.
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatalf("selector: %v", err)
	}
	if sel.Empty() || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("selector %q does not select the pod labels %v", sel, ds.Spec.Template.Labels)
	}

	u := ds.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil {
		t.Errorf("updateStrategy = %+v, want RollingUpdate", u)
	} else {
		if mu := u.RollingUpdate.MaxUnavailable; mu == nil || *mu != intstr.FromString("10%") {
			t.Errorf("maxUnavailable = %v, want 10%%", mu)
		}
		if ms := u.RollingUpdate.MaxSurge; ms != nil && ms.IntValue() != 0 {
			t.Errorf("maxSurge = %v, want 0: two pods on one node would share its ports", ms)
		}
	}
}

// checkPod checks where and how the pod runs: on the host network, as
// node-critical, with the base's ServiceAccount and no host paths.
func checkPod(t tb, o objects, pod corev1.PodSpec) {
	t.Helper()
	if !pod.HostNetwork {
		t.Error("hostNetwork must be true: masqd programs the node's own network namespace")
	}
	if pod.HostPID || pod.HostIPC {
		t.Error("hostPID and hostIPC must stay false")
	}
	if pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy = %q, want %q", pod.DNSPolicy, corev1.DNSClusterFirstWithHostNet)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q, want system-node-critical", pod.PriorityClassName)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g != 5 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 5", g)
	}
	if pod.ServiceAccountName != o.serviceAccount.Name {
		t.Errorf("serviceAccountName = %q, want the base's ServiceAccount %q", pod.ServiceAccountName, o.serviceAccount.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod must set automountServiceAccountToken: false")
	}
	wantNodes := map[string]string{
		"kubernetes.io/os":                       "linux",
		"node.kubernetes.io/masq-agent-ds-ready": "true",
	}
	if !maps.Equal(pod.NodeSelector, wantNodes) {
		t.Errorf("nodeSelector = %v, want %v", pod.NodeSelector, wantNodes)
	}
	checkTolerations(t, pod.Tolerations)

	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %q mounts a host path: masqd needs none", v.Name)
		}
	}
}

// checkServing checks that the ports the container declares are the ones
// masqd serves health and metrics on (effective gives a flag's value), and
// that kubelet and Prometheus can reach them.
func checkServing(t tb, ds *appsv1.DaemonSet, c corev1.Container, effective func(string) string) {
	t.Helper()
	ports := map[string]int32{}
	for _, p := range c.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			t.Errorf("port %q: protocol %s, want TCP", p.Name, p.Protocol)
		}
		if p.HostPort != 0 && p.HostPort != p.ContainerPort {
			t.Errorf("port %q: hostPort %d must equal containerPort %d on the host network", p.Name, p.HostPort, p.ContainerPort)
		}
		ports[p.Name] = p.ContainerPort
	}
	healthPort, metricsPort := ports["health"], ports["metrics"]
	if healthPort == 0 || metricsPort == 0 || len(ports) != 2 {
		t.Errorf("ports = %v, want exactly health and metrics", ports)
	}

	// Health: kubelet probes the pod's IP, which is the node's, so masqd
	// must listen beyond loopback on the declared port.
	host, port := splitBindAddress(t, "health-bind-address", effective("health-bind-address"))
	if port != healthPort {
		t.Errorf("masqd serves health on port %d (--health-bind-address=%s), the DaemonSet declares %d", port, effective("health-bind-address"), healthPort)
	}
	if host.IsValid() && !host.IsUnspecified() {
		t.Errorf("--health-bind-address host %s: kubelet probes the node IP, listen on 0.0.0.0", host)
	}
	checkProbe(t, "livenessProbe", c.LivenessProbe, "/healthz", healthPort, ports)
	checkProbe(t, "readinessProbe", c.ReadinessProbe, "/readyz", healthPort, ports)

	// Metrics: declared, served where Prometheus can reach it, annotated.
	metricsAddr := effective("metrics-bind-address")
	host, port = splitBindAddress(t, "metrics-bind-address", metricsAddr)
	if port != metricsPort {
		t.Errorf("masqd serves metrics on port %d (--metrics-bind-address=%s), the DaemonSet declares %d", port, metricsAddr, metricsPort)
	}
	if host.IsValid() && !host.IsUnspecified() {
		t.Errorf("--metrics-bind-address=%s: Prometheus cannot scrape it; bind 0.0.0.0", metricsAddr)
	}
	a := ds.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(int(metricsPort)) {
		t.Errorf("prometheus annotations = %v, want scrape true, path /metrics, port %d", a, metricsPort)
	}
}

// parseArgs reads the container's args as masqd flags and checks that masqd
// defines each one.
func parseArgs(t tb, c corev1.Container, flags masqdFlags) map[string]string {
	t.Helper()
	if len(c.Command) > 0 {
		t.Errorf("command = %v: leave it to the image's ENTRYPOINT", c.Command)
	}
	args := map[string]string{}
	for _, a := range c.Args {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			t.Errorf("arg %q: write flags as --name or --name=value", a)
			continue
		}
		name, value, hasValue := strings.Cut(name, "=")
		if !hasValue {
			value = "true"
		}
		if _, ok := flags.defaults[name]; !ok {
			t.Errorf("arg %q: masqd has no flag --%s (flags from %s)", a, name, flags.source)
		}
		if _, dup := args[name]; dup {
			t.Errorf("arg --%s is given twice", name)
		}
		args[name] = value
	}
	return args
}

// splitBindAddress parses a listen address; an empty host means every
// address and yields an invalid netip.Addr.
func splitBindAddress(t tb, flag, addr string) (netip.Addr, int32) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("--%s=%s: %v", flag, addr, err)
		return netip.Addr{}, 0
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Errorf("--%s=%s: port: %v", flag, addr, err)
	}
	var host netip.Addr
	if h != "" {
		if host, err = netip.ParseAddr(h); err != nil {
			t.Errorf("--%s=%s: host: %v", flag, addr, err)
		}
	}
	return host, int32(port)
}

func checkProbe(t tb, name string, p *corev1.Probe, path string, port int32, ports map[string]int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s must be an httpGet probe of %s", name, path)
		return
	}
	g := p.HTTPGet
	got := int32(g.Port.IntValue())
	if g.Port.Type == intstr.String {
		got = ports[g.Port.StrVal]
	}
	if g.Path != path || got != port || (g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP) || g.Host != "" {
		t.Errorf("%s = %s %s://%s:%s%s, want GET http://<pod IP>:%d%s", name, "GET", g.Scheme, g.Host, g.Port.String(), g.Path, port, path)
	}
}

func checkSecurityContext(t tb, sc *corev1.SecurityContext) {
	t.Helper()
	if sc == nil {
		t.Fatal("the container has no securityContext")
	}
	isFalse := func(b *bool) bool { return b != nil && !*b }
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isFalse(sc.Privileged) {
		t.Error("privileged must be false")
	}
	if !isFalse(sc.AllowPrivilegeEscalation) {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem must be true")
	}
	// Root, with NET_ADMIN as the only capability: a non-root process gets
	// added capabilities in its bounding set only.
	if !isFalse(sc.RunAsNonRoot) {
		t.Error("runAsNonRoot must be false: CAP_NET_ADMIN is effective only for root")
	}
	if sc.RunAsUser != nil && *sc.RunAsUser != 0 {
		t.Errorf("runAsUser = %d, want 0", *sc.RunAsUser)
	}
	if sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN"}) ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities = %+v, want add [NET_ADMIN], drop [ALL]", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
}

func checkResources(t tb, r corev1.ResourceRequirements) {
	t.Helper()
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("10m"),
			corev1.ResourceMemory: resource.MustParse("32Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
	}
	same := func(a, b corev1.ResourceList) bool {
		if len(a) != len(b) {
			return false
		}
		for k, q := range a {
			if w, ok := b[k]; !ok || q.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	if !same(r.Requests, want.Requests) || !same(r.Limits, want.Limits) {
		t.Errorf("resources = requests %v limits %v, want requests cpu 10m memory 32Mi, limits memory 128Mi only (make memory measures them)", r.Requests, r.Limits)
	}
}

// checkEnv checks that the container's only variable is GOMEMLIMIT, taken
// from its own memory limit in bytes, which Go reads as bytes.
func checkEnv(t tb, c corev1.Container) {
	t.Helper()
	if len(c.Env) != 1 || c.Env[0].Name != "GOMEMLIMIT" || len(c.EnvFrom) > 0 {
		t.Errorf("env = %+v, want only GOMEMLIMIT", c.Env)
		return
	}
	from := c.Env[0].ValueFrom
	if from == nil || from.ResourceFieldRef == nil {
		t.Error("GOMEMLIMIT must come from the downward API (resourceFieldRef limits.memory), so it follows the limit")
		return
	}
	r := from.ResourceFieldRef
	if r.Resource != "limits.memory" || (r.ContainerName != "" && r.ContainerName != c.Name) || (!r.Divisor.IsZero() && r.Divisor.Value() != 1) {
		t.Errorf("GOMEMLIMIT from %+v, want this container's limits.memory in bytes (no divisor)", r)
	}
}

// checkTolerations checks that the pod tolerates every taint that would keep
// it off a node or evict it, whatever its key, and forever.
func checkTolerations(t tb, tols []corev1.Toleration) {
	t.Helper()
	taints := []corev1.Taint{
		{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoExecute},
		{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute},
		{Key: "node.kubernetes.io/unschedulable", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/disk-pressure", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/network-unavailable", Effect: corev1.TaintEffectNoSchedule},
		{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
		{Key: "CriticalAddonsOnly", Value: "true", Effect: corev1.TaintEffectNoSchedule},
		{Key: "example.com/dedicated", Value: "gpu", Effect: corev1.TaintEffectNoExecute},
	}
	for _, taint := range taints {
		ok := slices.ContainsFunc(tols, func(tol corev1.Toleration) bool {
			return tol.ToleratesTaint(klog.Background(), &taint, false)
		})
		if !ok {
			t.Errorf("no toleration of taint %s", taint.ToString())
		}
	}
	for _, tol := range tols {
		if tol.TolerationSeconds != nil {
			t.Errorf("toleration %+v sets tolerationSeconds: the pod would be evicted", tol)
		}
	}
}

// checkConfigMount checks that the ConfigMap's key lands where masqd reads
// its config: at --config, which is internal/config's DefaultPath.
func checkConfigMount(t tb, o objects, c corev1.Container, configFlag string) {
	t.Helper()
	if want := configDefaultPath(t); configFlag != want {
		t.Errorf("masqd reads %s (--config), want internal/config.DefaultPath %s", configFlag, want)
	}
	var vol *corev1.Volume
	for i, v := range o.daemonSet.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == configMapName {
			vol = &o.daemonSet.Spec.Template.Spec.Volumes[i]
		}
	}
	if vol == nil {
		t.Fatalf("no volume of ConfigMap %q", configMapName)
	}
	if o.configMap != nil && o.configMap.Name != vol.ConfigMap.Name {
		t.Errorf("volume %q mounts ConfigMap %q, the example is %q", vol.Name, vol.ConfigMap.Name, o.configMap.Name)
	}
	cm := vol.ConfigMap
	if cm.Optional == nil || !*cm.Optional {
		t.Error("the config volume must be optional: a missing ConfigMap means the defaults")
	}
	if len(cm.Items) != 1 || cm.Items[0].Key != configMapKey {
		t.Fatalf("config volume items = %+v, want only key %q", cm.Items, configMapKey)
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.Name == vol.Name {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("volume %q is not mounted", vol.Name)
	}
	if !mount.ReadOnly || mount.SubPath != "" {
		t.Errorf("mount %q: readOnly %v subPath %q: want read-only, no subPath (kubelet updates only whole-directory mounts)", mount.Name, mount.ReadOnly, mount.SubPath)
	}
	if got := path.Join(mount.MountPath, cm.Items[0].Path); got != configFlag {
		t.Errorf("key %q lands at %s, masqd reads %s", configMapKey, got, configFlag)
	}
}
