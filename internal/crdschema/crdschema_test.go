package crdschema_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/internal/crdschema"
	"github.com/cnpgen/cnpgen/internal/kubetest"
)

const head = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: frontend, namespace: shop}\n"

// cases: manifests and the error the apiserver gives them ("" = accepted).
var cases = []struct {
	name, manifest, want string
}{
	{"valid egress", head + `spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
  - toEndpoints: [{matchLabels: {app: catalog, k8s:io.kubernetes.pod.namespace: shop}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  - toFQDNs: [{matchName: api.stripe.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  - toEntities: [kube-apiserver]
  - toCIDR: [203.0.113.9/32]
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: UDP}, {port: "53", protocol: TCP}]
      rules: {dns: [{matchPattern: "*"}]}
`, ""},
	{"valid ingress with icmp and endPort", head + `spec:
  endpointSelector: {}
  ingress:
  - fromEntities: [host, remote-node]
    icmps: [{fields: [{type: 8, family: IPv4}]}]
  - fromEndpoints: [{}]
    toPorts: [{ports: [{port: "8000", endPort: 8080, protocol: TCP}]}]
`, ""},
	{"valid clusterwide", "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: dns}\nspec:\n  endpointSelector: {}\n  egress:\n  - toEntities: [cluster]\n", ""},
	{"bad protocol", head + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts: [{ports: [{port: \"80\", protocol: TCPX}]}]\n", "spec.egress[0].toPorts[0].ports[0].protocol"},
	{"world-ipv4 is not an entity in the CRD", head + "spec:\n  endpointSelector: {}\n  egress:\n  - toEntities: [world-ipv4]\n", "spec.egress[0].toEntities[0]"},
	{"protocol beside ports", head + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts: [{protocol: TCP, ports: [{port: \"80\"}]}]\n", "spec.egress[0].toPorts[0].protocol"},
	{"port not a number", head + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts: [{ports: [{port: \"http-alt\", protocol: TCP}]}]\n", ""},
	// The CRD's pattern lets 70000 through; Cilium's Rule.Sanitize does not.
	{"port out of range passes the schema", head + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts: [{ports: [{port: \"70000\", protocol: TCP}]}]\n", ""},
	{"slash in name", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: shop/frontend, namespace: shop}\nspec:\n  endpointSelector: {}\n", "metadata.name"},
	{"leading dash in name", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: -frontend, namespace: shop}\nspec:\n  endpointSelector: {}\n", "metadata.name"},
	{"unknown field", head + "spec:\n  endpointSelector: {}\n  egres: []\n", "spec.egres"},
	{"bad CIDR", head + "spec:\n  endpointSelector: {}\n  egress:\n  - toCIDR: [10.0.0.0/33]\n", "spec.egress[0].toCIDR[0]"},
}

func decode(t *testing.T, y string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(y), &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestValidate(t *testing.T) {
	v, err := crdschema.Cilium()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := v.Validate(decode(t, tc.manifest))
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("rejected: %v", errs)
			case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want)):
				t.Errorf("errors %v, want one for %s", errs, tc.want)
			}
		})
	}
	if errs := v.Validate(map[string]any{"apiVersion": "v1", "kind": "Pod"}); len(errs) == 0 {
		t.Error("a Pod passed as a Cilium policy")
	}
}

// TestValidateLikeApiserver submits every case to a real kube-apiserver
// with Cilium's CRDs (server-side dry run, strict field validation) and
// checks both say the same.
func TestValidateLikeApiserver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	env := kubetest.StartWithCilium(t)
	env.EnsureNamespace(t, "shop")
	v, err := crdschema.Cilium()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := decode(t, tc.manifest)
			err := env.DryRun(decode(t, tc.manifest))
			local := v.Validate(obj)
			if (err == nil) != (len(local) == 0) {
				t.Errorf("apiserver: %v\nlocal: %v", err, local)
			}
		})
	}
}

// TestConformancePoliciesPass checks every policy of the conformance
// corpus — all of which Cilium's own parsing and the apiserver accept —
// against the validator.
func TestConformancePoliciesPass(t *testing.T) {
	v, err := crdschema.Cilium()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../testdata/conformance/cilium-l3l4/case-*/policies.yaml")
	if len(files) < 100 {
		t.Fatalf("%d conformance cases found", len(files))
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			if errs := v.Validate(decode(t, doc)); len(errs) > 0 {
				t.Errorf("%s document %d: %v", f, i+1, errs)
			}
			n++
		}
	}
	t.Logf("%d policies validated", n)
}
