package synth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnpgen/cnpgen/internal/flowgen"
	"github.com/cnpgen/cnpgen/internal/kubetest"
	"github.com/cnpgen/cnpgen/learn"
	"github.com/cnpgen/cnpgen/synth"
)

var update = flag.Bool("update", false, "rewrite golden files")

func learnBytes(t testing.TB, name string, data ...[]byte) *learn.Graph {
	t.Helper()
	g := learn.NewGraph()
	l := learn.NewLearner(g, nil)
	for _, d := range data {
		src, err := learn.NewReaderSource(name, bytes.NewReader(d))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Learn(context.Background(), src, nil); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func demoGraph(t testing.TB) *learn.Graph {
	var b bytes.Buffer
	if _, err := flowgen.Write(&b, flowgen.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return learnBytes(t, "demo", b.Bytes())
}

func bookinfoGraph(t testing.TB) *learn.Graph {
	var data [][]byte
	for _, f := range []string{"basic-sample-400-tcp-flows.json", "basic-sample-400-udp-flows.json", "basic-sample-400-icmpv4-flows.json"} {
		b, err := os.ReadFile(filepath.Join("../testdata/flows/hubble-otel", f))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b)
	}
	return learnBytes(t, "bookinfo", data...)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (-want +got):\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

// TestGolden synthesises the demo app and the bookinfo capture. Every
// policy has passed Rule.Sanitize and the CRD schema inside Synthesize.
func TestGolden(t *testing.T) {
	for name, g := range map[string]*learn.Graph{"demo": demoGraph(t), "bookinfo": bookinfoGraph(t)} {
		for mode, o := range map[string]synth.Options{
			"":         {Version: "test"},
			"-audit":   {Version: "test", Audit: true},
			"-l7":      {Version: "test", L7HTTP: true, L7DNS: true, GeneralizePaths: true, PortRanges: true},
			"-cluster": {Version: "test", Cluster: true, CIDRPrefix: 24, IncludeSystem: true},
		} {
			res, err := synth.Synthesize(g, o)
			if err != nil {
				t.Fatal(err)
			}
			y, err := synth.YAML(res.Policies)
			if err != nil {
				t.Fatal(err)
			}
			var report strings.Builder
			for _, f := range res.Report {
				report.WriteString(f.Subject + ": " + f.Reason + "\n")
			}
			golden(t, name+mode+".yaml", y)
			golden(t, name+mode+".report.txt", []byte(report.String()))
			// Deterministic: a second run gives the same bytes.
			again, _ := synth.Synthesize(g, o)
			if y2, _ := synth.YAML(again.Policies); !bytes.Equal(y, y2) {
				t.Errorf("%s%s: second run differs", name, mode)
			}
		}
	}
}

func TestSystemNamespacesNeedAsking(t *testing.T) {
	g := demoGraph(t)
	res, err := synth.Synthesize(g, synth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Policies {
		if p.Metadata.Namespace == "kube-system" {
			t.Errorf("policy for %s/%s without --include-system", p.Metadata.Namespace, p.Metadata.Name)
		}
	}
	res, err = synth.Synthesize(g, synth.Options{IncludeSystem: true})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range res.Policies {
		found = found || p.Metadata.Namespace == "kube-system"
	}
	if !found {
		t.Error("no kube-system policy with --include-system")
	}
}

func TestWriteDir(t *testing.T) {
	res, err := synth.Synthesize(demoGraph(t), synth.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A policy a person wrote, where cnpgen would write frontend's.
	mine := []byte("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: frontend, namespace: shop}\nspec: {endpointSelector: {}}\n")
	os.MkdirAll(filepath.Join(dir, "shop"), 0o755)
	os.WriteFile(filepath.Join(dir, "shop", "frontend.yaml"), mine, 0o644)
	d, err := synth.WriteDir(dir, res.Policies, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"shop/frontend.yaml"}, d.Kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "shop", "frontend.yaml")); !bytes.Equal(got, mine) {
		t.Error("a person's file was overwritten")
	}
	// Prune removes cnpgen's file of a workload that vanished, only with --prune.
	d, err = synth.WriteDir(dir, res.Policies[1:], false)
	if err != nil || len(d.Removed) != 0 {
		t.Fatalf("removed %v without prune (%v)", d.Removed, err)
	}
	d, err = synth.WriteDir(dir, res.Policies[1:], true)
	first := res.Policies[0]
	if err != nil || len(d.Removed) != 1 || d.Removed[0] != filepath.Join(first.Metadata.Namespace, first.Metadata.Name+".yaml") {
		t.Errorf("prune removed %v (%v)", d.Removed, err)
	}
	k, _ := os.ReadFile(filepath.Join(dir, "shop", "kustomization.yaml"))
	if !strings.Contains(string(k), "- frontend.yaml") {
		t.Errorf("kustomization does not list the person's file:\n%s", k)
	}
}

// TestApiserverAcceptsPolicies applies the demo app's and bookinfo's
// policies to a real kube-apiserver with Cilium's CRDs, server-side dry
// run with strict field validation: every one is accepted.
func TestApiserverAcceptsPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	env := kubetest.StartWithCilium(t)
	for _, g := range []*learn.Graph{demoGraph(t), bookinfoGraph(t)} {
		for _, o := range []synth.Options{{}, {Audit: true, IncludeSystem: true}, {L7HTTP: true, L7DNS: true, GeneralizePaths: true, PortRanges: true}, {Cluster: true, IncludeSystem: true, CIDRPrefix: 24}} {
			res, err := synth.Synthesize(g, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res.Policies {
				if ns := p.Metadata.Namespace; ns != "" {
					env.EnsureNamespace(t, ns)
				}
				b, _ := json.Marshal(p)
				var obj map[string]any
				json.Unmarshal(b, &obj)
				if err := env.DryRun(obj); err != nil {
					t.Errorf("%s/%s rejected: %v", p.Metadata.Namespace, p.Metadata.Name, err)
				}
			}
		}
	}
}

func TestSelectorLabels(t *testing.T) {
	res, err := synth.Synthesize(bookinfoGraph(t), synth.Options{SelectorLabels: []string{"version", "app"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Policies {
		if p.Metadata.Name == "details-v1" {
			if diff := cmp.Diff(map[string]string{"version": "v1", "app": "details"}, p.Spec.EndpointSelector.MatchLabels); diff != "" {
				t.Errorf("selector with --selector-labels version,app (-want +got):\n%s", diff)
			}
			return
		}
	}
	t.Fatal("no policy for details-v1")
}

// TestGoldenRealCaptures synthesises every real capture on its own.
func TestGoldenRealCaptures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/flows/*/*.json*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(f)) + "-" + strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		res, err := synth.Synthesize(learnBytes(t, f, data), synth.Options{Version: "test", IncludeSystem: true})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		y, err := synth.YAML(res.Policies)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("captures", name+".yaml"), y)
	}
}
