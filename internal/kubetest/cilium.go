package kubetest

import (
	"context"
	"testing"

	crdsv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/client/crds/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resources of Cilium's policies.
var (
	CNP  = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
	CCNP = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
)

// StartWithCilium starts the apiserver with Cilium v1.20.2's
// CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy CRDs installed.
func StartWithCilium(tb testing.TB) *Env {
	tb.Helper()
	env := Start(tb)
	var crds [][]byte
	for _, f := range []string{"ciliumnetworkpolicies.yaml", "ciliumclusterwidenetworkpolicies.yaml"} {
		b, err := crdsv2.EmbedFS.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		crds = append(crds, b)
	}
	env.ApplyCRDs(tb, crds...)
	return env
}

// EnsureNamespace creates a namespace unless it exists.
func (e *Env) EnsureNamespace(tb testing.TB, name string) {
	tb.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	_, err := e.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatal(err)
	}
}

// DryRun submits a Cilium policy with a server-side dry run and strict
// field validation, and returns the apiserver's verdict.
func (e *Env) DryRun(obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	var err error
	if u.GetKind() == "CiliumClusterwideNetworkPolicy" {
		_, err = e.Dynamic.Resource(CCNP).Create(context.Background(), u, opts)
	} else {
		_, err = e.Dynamic.Resource(CNP).Namespace(u.GetNamespace()).Create(context.Background(), u, opts)
	}
	return err
}
