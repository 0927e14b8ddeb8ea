package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/diff"
	"github.com/cnpgen/cnpgen/internal/kubetest"
)

// TestDiffLive applies the demo's "live" policy set to a real
// kube-apiserver with Cilium's CRDs and checks that cnpgen diff --live
// finds exactly what it finds in the files.
func TestDiffLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver")
	}
	env := kubetest.StartWithCilium(t)
	dir := t.TempDir()
	flows, graph := filepath.Join(dir, "flows.json"), filepath.Join(dir, "g.json")
	for _, args := range [][]string{
		{"demo-flows", "--seed", "1", "--flows", "3000", "-o", flows},
		{"learn", "-f", flows, "--graph", graph},
	} {
		if code, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: %d\n%s", args, code, stderr)
		}
	}
	data, err := os.ReadFile("../../testdata/demo/live-policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env.EnsureNamespace(t, "shop")
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := env.Dynamic.Resource(kubetest.CNP).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", u.GetName(), err)
		}
	}

	report := func(args ...string) *diff.Report {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--graph", graph, "-o", "json"), strings.NewReader(""), &out, &errb)
		if code != exitFindings {
			t.Fatalf("%v: exit %d, want 1\n%s", args, code, errb.String())
		}
		var r diff.Report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	files := report("diff", "--policies", "../../testdata/demo/live-policies.yaml")
	live := report("diff", "--live", "--kubeconfig", env.Kubeconfig)
	if len(live.DeniedButNeeded) != 1 || len(live.AllowedButUnused) != 2 {
		t.Fatalf("live: %s", live.Summary())
	}
	// The same findings; only where the policies came from differs.
	for _, r := range []*diff.Report{files, live} {
		for i := range r.DeniedButNeeded {
			r.DeniedButNeeded[i].Source = ""
			for j := range r.DeniedButNeeded[i].DeniedBy {
				r.DeniedButNeeded[i].DeniedBy[j].Source = ""
			}
		}
		for i := range r.AllowedButUnused {
			r.AllowedButUnused[i].Source = ""
		}
	}
	fb, _ := json.Marshal(files)
	lb, _ := json.Marshal(live)
	if !bytes.Equal(fb, lb) {
		t.Errorf("--live and --policies disagree:\nfiles: %s\nlive:  %s", fb, lb)
	}
	// verify --live too.
	if code, stderr := runCLI(t, "verify", "--live", "--kubeconfig", env.Kubeconfig, "--graph", graph); code != exitFindings {
		t.Errorf("verify --live: exit %d\n%s", code, stderr)
	}
}
