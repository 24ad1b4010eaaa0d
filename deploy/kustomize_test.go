package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// render runs kustomize, as `kubectl kustomize dir` does, on fSys.
func render(t *testing.T, fSys filesys.FileSystem, dir string) []byte {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fSys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKustomizeBuild renders the base as `kubectl apply -k deploy/` would
// and checks that what reaches the cluster is what the files say.
func TestKustomizeBuild(t *testing.T) {
	out := render(t, filesys.MakeFsOnDisk(), ".")
	rendered, err := decodeObjects(splitDocuments(out))
	if err != nil {
		t.Fatalf("rendered base: %v\n%s", err, out)
	}
	files := readBase(t)
	if !reflect.DeepEqual(rendered, files) {
		t.Errorf("kustomize changes the manifests:\n%s", out)
	}
	checkDaemonSet(t, rendered, loadMasqdFlags(t))
}

// TestKubectlKustomize checks the base with the kustomize that kubectl
// embeds, where kubectl is installed: it must agree with the library.
func TestKubectlKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; TestKustomizeBuild covers the same with the kustomize library")
	}
	out, err := exec.Command(kubectl, "kustomize", ".").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	want := render(t, filesys.MakeFsOnDisk(), ".")
	var got, wantObjs []map[string]any
	for _, d := range splitDocuments(out) {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	for _, d := range splitDocuments(want) {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			t.Fatal(err)
		}
		wantObjs = append(wantObjs, m)
	}
	if !reflect.DeepEqual(got, wantObjs) {
		t.Errorf("kubectl kustomize renders\n%s\nthe kustomize library renders\n%s", out, want)
	}
}

// readmeOverlay returns the example overlay from README.md: the yaml block
// that starts with "# my-overlay/kustomization.yaml".
func readmeOverlay(t *testing.T) []byte {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```yaml\n# my-overlay/kustomization.yaml\n"
	_, rest, ok := bytes.Cut(readme, []byte(start))
	if !ok {
		t.Fatalf("README.md has no block starting %q", start)
	}
	block, _, ok := bytes.Cut(rest, []byte("\n```"))
	if !ok {
		t.Fatal("README.md: the overlay block is not closed")
	}
	return block
}

// TestReadmeOverlay renders the README's overlay over a copy of the base,
// laid out as the README says (../masqd/deploy), and checks that it does
// what the README promises and keeps every invariant.
func TestReadmeOverlay(t *testing.T) {
	fSys := filesys.MakeFsInMemory()
	k := readKustomization(t)
	for _, f := range append([]string{"kustomization.yaml"}, k.Resources...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := fSys.WriteFile(path.Join("/masqd/deploy", f), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := fSys.WriteFile("/my-overlay/kustomization.yaml", readmeOverlay(t)); err != nil {
		t.Fatal(err)
	}

	out := render(t, fSys, "/my-overlay")
	o, err := decodeObjects(splitDocuments(out))
	if err != nil {
		t.Fatalf("rendered overlay: %v\n%s", err, out)
	}
	if o.configMap != nil {
		t.Error("the overlay still ships the example ConfigMap, which would replace the cluster's own")
	}
	c := o.daemonSet.Spec.Template.Spec.Containers[0]
	if want := "registry.example.com/masqd:v0.1.0"; c.Image != want {
		t.Errorf("image = %q, want %q", c.Image, want)
	}
	for _, a := range []string{"--enable-ipv6", "--log-level=debug"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v lack %s", c.Args, a)
		}
	}
	if strings.Contains(string(out), "ghcr.io/masqd/masqd") {
		t.Error("the base image is still referenced")
	}
	checkDaemonSet(t, o, loadMasqdFlags(t))
}
