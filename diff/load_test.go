package diff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadConformancePolicies(t *testing.T) {
	ps, err := LoadPaths([]string{"../testdata/conformance/cilium-l3l4"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 366 {
		t.Errorf("%d policies, want the corpus' 366", len(ps))
	}
	for _, p := range ps {
		if len(p.Rules) == 0 || p.Name == "" || !strings.Contains(p.Source, "policies.yaml:") {
			t.Errorf("%+v", p)
		}
	}
}

func TestLoad(t *testing.T) {
	const cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: a}}\n  ingress: [{}]\n"
	const list = `apiVersion: v1
kind: List
items:
- apiVersion: cilium.io/v2
  kind: CiliumClusterwideNetworkPolicy
  metadata: {name: c}
  specs:
  - endpointSelector: {}
    egress: [{toEntities: [world]}]
  - nodeSelector: {}
    ingress: [{fromEntities: [cluster]}]
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: np}
  spec: {podSelector: {}, policyTypes: [Ingress]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: ignored}
`
	type got struct {
		Kind, Namespace, Name, Source string
		Rules                         int
	}
	describe := func(ps []*Policy) []got {
		var out []got
		for _, p := range ps {
			out = append(out, got{p.Kind, p.Namespace, p.Name, p.Source, len(p.Rules)})
		}
		return out
	}
	ps, err := Load("f.yaml", []byte("# policies\n---\n"+cnp+"---\n"+list))
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{"CiliumNetworkPolicy", "shop", "a", "f.yaml:3", 1},
		{"CiliumClusterwideNetworkPolicy", "", "c", "f.yaml:10: items[0]", 2},
		{"NetworkPolicy", "default", "np", "f.yaml:10: items[1]", 0},
	}
	if diff := cmp.Diff(want, describe(ps)); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}

	// Directories recurse; stdin reads "-".
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "shop"), 0o755)
	os.WriteFile(filepath.Join(dir, "shop", "a.yaml"), []byte(cnp), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not yaml: ["), 0o644)
	ps, err = LoadPaths([]string{dir, "-"}, strings.NewReader(list))
	if err != nil || len(ps) != 3 {
		t.Fatalf("%d policies, %v", len(ps), err)
	}
}

func TestLoadKeepsGoing(t *testing.T) {
	in := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: bad}\n---\n" +
		"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: good, namespace: shop}\nspec: {endpointSelector: {}, ingress: [{}]}\n---\n" +
		"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n"
	ps, err := Load("f.yaml", []byte(in))
	le, ok := err.(*LoadError)
	if !ok || len(le.Errs) != 1 || !strings.Contains(le.Errs[0].Error(), "f.yaml:1: CiliumNetworkPolicy bad") {
		t.Fatalf("error %v, want one LoadError for the first document", err)
	}
	if len(ps) != 1 || ps[0].Name != "good" {
		t.Errorf("policies %v, want the good one", ps)
	}
	if _, err := Load("big.yaml", make([]byte, MaxFileSize+1)); err == nil || !strings.Contains(err.Error(), "big.yaml: ") {
		t.Errorf("huge file: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	head := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a, namespace: shop}\n"
	for _, tc := range []struct{ name, in, want string }{
		{"bad yaml", "a: [", "f.yaml:1: "},
		{"no kind", "metadata: {name: x}\n", "f.yaml:1: object without a kind"},
		{"unknown field", head + "spec:\n  endpointSelector: {}\n  egres: []\n", `f.yaml:1: CiliumNetworkPolicy: error unmarshaling JSON: while decoding JSON: json: unknown field "egres"`},
		{"no spec", head, "f.yaml:1: CiliumNetworkPolicy a: neither spec nor specs"},
		{"sanitize", head + "spec:\n  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: \"70000\", protocol: TCP}]}]}]\n", "f.yaml:1: CiliumNetworkPolicy a: spec: "},
		{"schema", head + "spec:\n  endpointSelector: {}\n  egress: [{toEntities: [world-ipv4]}]\n", "f.yaml:1: CiliumNetworkPolicy a: rejected by the CRD schema: "},
		{"port as a number", head + "spec:\n  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: 80}]}]}]\n", "f.yaml:1: CiliumNetworkPolicy"},
		{"unmodelled kind", "apiVersion: cilium.io/v2\nkind: CiliumCIDRGroup\nmetadata: {name: g}\n", "f.yaml:1: CiliumCIDRGroup (cilium.io/v2) is not evaluated"},
		{"comment before", "# a comment\n\n" + head, "f.yaml:3: CiliumNetworkPolicy a: neither spec nor specs"},
		{"second document", "---\n" + head + "spec: {endpointSelector: {}, ingress: [{}]}\n---\nkind: CiliumNetworkPolicy\nspec: [\n", "f.yaml:7: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("f.yaml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if _, ok := err.(*LoadError); !ok {
				t.Errorf("error %T, want *LoadError", err)
			}
		})
	}
}

func TestRuleSource(t *testing.T) {
	in := `# comment
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: a, namespace: shop}
spec:
  endpointSelector: {}
  ingress:
  - {}
specs:
- endpointSelector: {}
  egress:
  - toEntities: [world]
  - toEntities: [host]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: shop}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
    - namespaceSelector: {}
`
	ps, err := Load("f.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p           *Policy
		where, want string
	}{
		{ps[0], "spec.ingress[0]", "f.yaml:8"},
		{ps[0], "specs[0].egress[1]", "f.yaml:13"},
		{ps[0], "default-deny", "f.yaml:2"},
		{ps[0], "specs[3].egress[0]", "f.yaml:2"},
		{ps[1], "spec.ingress[0].from[1]", "f.yaml:23"},
	} {
		if got := tc.p.RuleSource(tc.where); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.p.Name, tc.where, got, tc.want)
		}
	}
}
