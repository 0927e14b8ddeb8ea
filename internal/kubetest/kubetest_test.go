package kubetest_test

import (
	"context"
	"strings"
	"testing"

	crdsv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/client/crds/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/internal/kubetest"
)

var cnpGVR = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}

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
	env := kubetest.Start(t)
	var crds [][]byte
	for _, f := range []string{"ciliumnetworkpolicies.yaml", "ciliumclusterwidenetworkpolicies.yaml"} {
		b, err := crdsv2.EmbedFS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		crds = append(crds, b)
	}
	env.ApplyCRDs(t, crds...)
	ctx := context.Background()
	ns := cnp(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
	if _, err := env.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
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
	if _, err := env.Dynamic.Resource(cnpGVR).Namespace("shop").Create(ctx, valid, dry); err != nil {
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
	_, err := env.Dynamic.Resource(cnpGVR).Namespace("shop").Create(ctx, invalid, dry)
	if err == nil || !strings.Contains(err.Error(), "spec.egress[0].toPorts[0].ports[0].protocol") {
		t.Fatalf("invalid CNP: error %v, want one naming the protocol field", err)
	}
	t.Log(err)
}
