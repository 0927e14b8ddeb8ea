package kubetest_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/internal/kubetest"
)

func cnp(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(y), &obj); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

// TestApiserverValidatesCNPs starts the real apiserver with Cilium's CRDs
// and shows it accepts a valid CNP and rejects an invalid one on a
// server-side dry run, as a real cluster does.
func TestApiserverValidatesCNPs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	env := kubetest.StartWithCilium(t)
	env.EnsureNamespace(t, "shop")
	valid := cnp(t, `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
  - toEndpoints: [{matchLabels: {app: catalog}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`)
	if err := env.DryRun(valid.Object); err != nil {
		t.Fatalf("valid CNP rejected: %v", err)
	}
	invalid := cnp(t, `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  egress:
  - toEntities: [world-ipv4]
    toPorts: [{ports: [{port: "8080", protocol: TCPX}]}]
`)
	err := env.DryRun(invalid.Object)
	if err == nil || !strings.Contains(err.Error(), "spec.egress[0].toPorts[0].ports[0].protocol") {
		t.Fatalf("invalid CNP: error %v, want one naming the protocol field", err)
	}
	t.Log(err)
}
