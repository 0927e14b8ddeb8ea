package diff

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/internal/kubetest"
	"github.com/cnpgen/cnpgen/learn"
)

const (
	liveCNP = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-to-postgres, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
  - toServices: [{k8sService: {serviceName: postgres, namespace: db}}]
    toPorts: [{ports: [{port: pg, protocol: TCP}]}]
`
	liveCCNP = `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: allow-dns}
spec:
  endpointSelector: {}
  egress:
  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}]}]
`
	liveNP = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: postgres-from-shop, namespace: db}
spec:
  podSelector: {matchLabels: {app: postgres}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: shop}}}]
    ports: [{port: pg, protocol: TCP}]
`
	// liveInvalid is accepted by the apiserver (the CRD schema allows
	// it) but not by the agent, whose Sanitize rejects it.
	liveInvalid = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: mixed-peers, namespace: shop}
spec:
  endpointSelector: {}
  egress:
  - toEndpoints: [{}]
    toCIDR: [10.0.0.0/8]
`
)

func decodeYAML(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(y), &obj); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

// createLive creates the objects TestLoadLive reads.
func createLive(t *testing.T, env *kubetest.Env, cs kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("create %s: %v", what, err)
		}
	}
	for name, labels := range map[string]map[string]string{"shop": {"team": "shop"}, "db": nil} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		check("namespace "+name, err)
	}
	svcs := []*corev1.Service{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "postgres", Namespace: "db", Labels: map[string]string{"tier": "data"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "postgres"},
				Ports:    []corev1.ServicePort{{Name: "pg", Port: 5432}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: "db"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 5432}}},
		},
	}
	for _, s := range svcs {
		_, err := cs.CoreV1().Services(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		check("service "+s.Name, err)
	}
	container := func(ports ...corev1.ContainerPort) []corev1.Container {
		return []corev1.Container{{Name: "main", Image: "registry.example/app:1", Ports: ports}}
	}
	pods := []*corev1.Pod{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "postgres-0", Namespace: "db", Labels: map[string]string{"app": "postgres"}},
			Spec: corev1.PodSpec{
				Containers: container(corev1.ContainerPort{Name: "pg", ContainerPort: 5432}, corev1.ContainerPort{ContainerPort: 9187}),
				// Init containers' ports are no named ports for Cilium.
				InitContainers: []corev1.Container{{Name: "init", Image: "registry.example/init:1", Ports: []corev1.ContainerPort{{Name: "pg", ContainerPort: 6000}}}},
			},
		},
		{
			// Host-network pods are no endpoints: were its "pg" read, it
			// would conflict with postgres-0's and resolve nothing.
			ObjectMeta: metav1.ObjectMeta{Name: "postgres-host", Namespace: "db", Labels: map[string]string{"app": "postgres"}},
			Spec:       corev1.PodSpec{HostNetwork: true, Containers: container(corev1.ContainerPort{Name: "pg", ContainerPort: 9999})},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: container()},
		},
	}
	for _, p := range pods {
		_, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		check("pod "+p.Name, err)
	}
	for _, y := range []string{liveCNP, liveInvalid} {
		u := decodeYAML(t, y)
		_, err := env.Dynamic.Resource(kubetest.CNP).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{})
		check("CiliumNetworkPolicy "+u.GetName(), err)
	}
	_, err := env.Dynamic.Resource(kubetest.CCNP).Create(ctx, decodeYAML(t, liveCCNP), metav1.CreateOptions{})
	check("CiliumClusterwideNetworkPolicy", err)
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(liveNP), &np); err != nil {
		t.Fatal(err)
	}
	_, err = cs.NetworkingV1().NetworkPolicies("db").Create(ctx, &np, metav1.CreateOptions{})
	check("NetworkPolicy", err)
}

type livePolicy struct{ Kind, Namespace, Name, Source string }

func describeLive(ps []*Policy) []livePolicy {
	var out []livePolicy
	for _, p := range ps {
		out = append(out, livePolicy{p.Kind, p.Namespace, p.Name, p.Source})
	}
	return out
}

// loadErrors returns the messages of a *LoadError, failing on others.
func loadErrors(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("LoadLive: %v", err)
	}
	var out []string
	for _, e := range le.Errs {
		out = append(out, e.Error())
	}
	return out
}

// TestLoadLive reads policies, Services, Pods and Namespaces from a real
// apiserver and evaluates a connection through toServices and named
// ports with them.
func TestLoadLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	env := kubetest.StartWithCilium(t)
	quiet := rest.CopyConfig(env.Config)
	quiet.WarningHandler = rest.NoWarnings{} // postgres-0's duplicate port name
	cs, err := kubernetes.NewForConfig(quiet)
	if err != nil {
		t.Fatal(err)
	}
	createLive(t, env, cs)
	ctx := t.Context()

	cfg, err := RESTConfig(env.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	policies, cluster, err := LoadLive(ctx, cfg, "")
	bad := loadErrors(t, err)
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "cluster:CiliumNetworkPolicy/shop/mixed-peers: ") || !strings.Contains(bad[0], "not supported") {
		t.Errorf("load errors %q, want one for CiliumNetworkPolicy/shop/mixed-peers", bad)
	}
	t.Log(err)
	want := []livePolicy{
		{KindCCNP, "", "allow-dns", "cluster:CiliumClusterwideNetworkPolicy/allow-dns"},
		{KindCNP, "shop", "web-to-postgres", "cluster:CiliumNetworkPolicy/shop/web-to-postgres"},
		{KindNetworkPolicy, "db", "postgres-from-shop", "cluster:NetworkPolicy/db/postgres-from-shop"},
	}
	if diff := cmp.Diff(want, describeLive(policies)); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	for _, p := range policies {
		if (p.Kind == KindNetworkPolicy) != (p.NetworkPolicy != nil) || (p.Kind != KindNetworkPolicy && len(p.Rules) != 1) {
			t.Errorf("%s: %d rules, NetworkPolicy %v", p.Ref(), len(p.Rules), p.NetworkPolicy != nil)
		}
	}

	// The apiserver makes namespaces and a Service of its own, in time.
	var nsNames []string
	for _, ns := range cluster.Namespaces {
		nsNames = append(nsNames, ns.Name)
		if ns.Name == "shop" && ns.Labels["team"] != "shop" {
			t.Errorf("namespace shop: labels %v", ns.Labels)
		}
	}
	if !slices.Contains(nsNames, "shop") || !slices.Contains(nsNames, "db") || !slices.IsSorted(nsNames) {
		t.Errorf("namespaces %q, want db and shop among them, sorted", nsNames)
	}
	wantServices := []Service{
		{Namespace: "db", Name: "legacy"},
		{Namespace: "db", Name: "postgres", Labels: map[string]string{"tier": "data"}, Selector: map[string]string{"app": "postgres"}},
	}
	services := slices.DeleteFunc(slices.Clone(cluster.Services), func(s Service) bool { return s.Namespace == "default" })
	if diff := cmp.Diff(wantServices, services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	wantPods := []Pod{
		{Namespace: "db", Name: "postgres-0", Labels: map[string]string{"app": "postgres"}, Ports: []NamedPort{{Name: "pg", Port: 5432, Protocol: "TCP"}}},
		{Namespace: "shop", Name: "web-0", Labels: map[string]string{"app": "web"}},
	}
	if diff := cmp.Diff(wantPods, cluster.Pods); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}

	// Page by page, the same.
	l := &liveLoader{dyn: env.Dynamic, cs: cs, pageSize: 1}
	paged, pagedCluster, err := l.load(ctx)
	// Cilium's Sanitize names the combined peer kinds in map order.
	objects := func(errs []string) []string {
		var out []string
		for _, e := range errs {
			out = append(out, strings.SplitN(e, ": ", 2)[0])
		}
		return out
	}
	if diff := cmp.Diff(objects(bad), objects(loadErrors(t, err))); diff != "" {
		t.Errorf("paged load errors (-unpaged +paged):\n%s", diff)
	}
	if diff := cmp.Diff(describeLive(policies), describeLive(paged)); diff != "" {
		t.Errorf("paged policies (-unpaged +paged):\n%s", diff)
	}
	if diff := cmp.Diff(cluster, pagedCluster); diff != "" {
		t.Errorf("paged cluster (-unpaged +paged):\n%s", diff)
	}

	// One namespace: its CNPs and NetworkPolicies, and all CCNPs.
	dbPolicies, _, err := LoadLive(ctx, cfg, "db")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]livePolicy{want[0], want[2]}, describeLive(dbPolicies)); diff != "" {
		t.Errorf("policies of namespace db (-want +got):\n%s", diff)
	}

	t.Run("evaluate", func(t *testing.T) { testLiveEvaluate(t, policies, cluster) })
	t.Run("context", func(t *testing.T) { testRESTConfigContext(t, env) })
	t.Run("forbidden", func(t *testing.T) { testLiveForbidden(t, env, cs) })
	// Last: it removes Cilium's CRDs.
	t.Run("without-cilium", func(t *testing.T) { testLiveWithoutCilium(t, env, cfg) })
}

func testLiveEvaluate(t *testing.T, policies []*Policy, cluster *Cluster) {
	web := NewIdentity([]string{
		"k8s:app=web",
		"k8s:io.kubernetes.pod.namespace=shop",
		"k8s:io.cilium.k8s.namespace.labels.team=shop",
		"k8s:io.cilium.k8s.policy.cluster=default",
	}, netip.MustParseAddr("10.0.1.5"), nil)
	web.Pod = "web-0"
	postgres := NewIdentity([]string{
		"k8s:app=postgres",
		"k8s:io.kubernetes.pod.namespace=db",
		"k8s:io.cilium.k8s.policy.cluster=default",
	}, netip.MustParseAddr("10.0.2.7"), nil)
	postgresPod := *postgres
	postgresPod.Pod = "postgres-0"

	ev, err := NewEvaluator(policies, Options{ClusterName: "default", Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []*Identity{postgres, &postgresPod} {
		v := ev.Evaluate(&Request{Src: web, Dst: dst, Proto: learn.ProtoTCP, Port: 5432})
		if !v.Allowed || v.Egress.Decision != Allowed || v.Egress.Policy == nil || v.Egress.Policy.Name != "web-to-postgres" ||
			v.Ingress.Decision != Allowed || v.Ingress.Policy == nil || v.Ingress.Policy.Name != "postgres-from-shop" {
			t.Errorf("web -> postgres (pod %q) 5432/TCP: %+v, want allowed by web-to-postgres and postgres-from-shop", dst.Pod, v)
		}
		if len(v.Egress.Unresolved)+len(v.Ingress.Unresolved) > 0 {
			t.Errorf("web -> postgres (pod %q) 5432/TCP: unresolved %q %q", dst.Pod, v.Egress.Unresolved, v.Ingress.Unresolved)
		}
		v = ev.Evaluate(&Request{Src: web, Dst: dst, Proto: learn.ProtoTCP, Port: 5433})
		if v.Allowed || v.Egress.Decision != Denied || v.Egress.Rule != "default-deny" {
			t.Errorf("web -> postgres (pod %q) 5433/TCP: %+v, want denied by default", dst.Pod, v)
		}
		t.Logf("web -> postgres (pod %q) 5433/TCP: egress %s %s, ingress %s %s", dst.Pod, v.Egress.Decision, v.Egress.Ref(), v.Ingress.Decision, v.Ingress.Ref())
	}

	// Without the cluster, toServices and named ports are unresolved.
	ev, err = NewEvaluator(policies, Options{ClusterName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	v := ev.Evaluate(&Request{Src: web, Dst: postgres, Proto: learn.ProtoTCP, Port: 5432})
	if v.Allowed || len(v.Egress.Unresolved) == 0 || len(v.Ingress.Unresolved) == 0 {
		t.Errorf("web -> postgres 5432/TCP without the cluster: %+v, want denied with unresolved references", v)
	}
	t.Logf("unresolved without the cluster: %q %q", v.Egress.Unresolved, v.Ingress.Unresolved)
}

func testRESTConfigContext(t *testing.T, env *kubetest.Env) {
	if _, err := RESTConfig(env.Kubeconfig, "test"); err != nil {
		t.Errorf("context test: %v", err)
	}
	_, err := RESTConfig(env.Kubeconfig, "nope")
	if err == nil || !strings.Contains(err.Error(), `context "nope"`) || !strings.Contains(err.Error(), env.Kubeconfig) {
		t.Errorf("context nope: error %v, want one naming the context and the file", err)
	}
	t.Log(err)

	// KUBECONFIG is read when no file is given.
	t.Setenv("KUBECONFIG", env.Kubeconfig)
	if cfg, err := RESTConfig("", ""); err != nil || cfg.Host != env.Config.Host {
		t.Errorf("from KUBECONFIG: %v, %v", cfg, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := RESTConfig(missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing kubeconfig: error %v, want one naming the file", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("KUBECONFIG", empty)
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in-cluster
	if _, err := RESTConfig("", ""); err == nil || !strings.Contains(err.Error(), "no cluster configured") {
		t.Errorf("empty kubeconfig: error %v", err)
	}
}

// testLiveForbidden reads as a user RBAC lets list all but CCNPs.
func testLiveForbidden(t *testing.T, env *kubetest.Env, cs kubernetes.Interface) {
	ctx := t.Context()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-reader"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces", "services", "pods"}, Verbs: []string{"list"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list"}},
			{APIGroups: []string{"cilium.io"}, Resources: []string{"ciliumnetworkpolicies"}, Verbs: []string{"list"}},
		},
	}
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "policy-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "policy-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "alice"}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice"}
	const want = "list ciliumclusterwidenetworkpolicies.cilium.io: permission denied"
	var err error
	// The authorizer sees the binding a moment later.
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, _, err = LoadLive(ctx, cfg, "")
		if err != nil && strings.Contains(err.Error(), want) {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), want) || !apierrors.IsForbidden(err) {
		t.Fatalf("error %v, want %q", err, want)
	}
	t.Log(err)
}

// testLiveWithoutCilium removes Cilium's CRDs: there are no Cilium
// policies then, and that is no error.
func testLiveWithoutCilium(t *testing.T, env *kubetest.Env, cfg *rest.Config) {
	ctx := t.Context()
	crds := env.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	names := []string{"ciliumnetworkpolicies.cilium.io", "ciliumclusterwidenetworkpolicies.cilium.io"}
	for _, n := range names {
		if err := crds.Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitGone(t, ctx, crds, names)
	policies, _, err := LoadLive(ctx, cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]livePolicy{{KindNetworkPolicy, "db", "postgres-from-shop", "cluster:NetworkPolicy/db/postgres-from-shop"}}, describeLive(policies)); diff != "" {
		t.Errorf("policies without Cilium's CRDs (-want +got):\n%s", diff)
	}
}

func waitGone(t *testing.T, ctx context.Context, r dynamic.ResourceInterface, names []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range names {
		for {
			_, err := r.Get(ctx, n, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CRD %s still there: %v", n, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
