package diff

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig finds the apiserver the way kubectl does: the kubeconfig
// file at path kubeconfig if it is not empty, otherwise the files in
// $KUBECONFIG or ~/.kube/config (or the in-cluster configuration when
// there is none), with kubeContext, if not empty, in place of the
// current context.
func RESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	where := "kubeconfig " + strings.Join(rules.GetLoadingPrecedence(), string(os.PathListSeparator))
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
		where = "kubeconfig " + kubeconfig
	} else if len(rules.GetLoadingPrecedence()) == 0 {
		where = "kubeconfig"
	}
	overrides := &clientcmd.ConfigOverrides{}
	if kubeContext != "" {
		overrides.CurrentContext = kubeContext
		where += fmt.Sprintf(", context %q", kubeContext)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, fmt.Errorf("%s: no cluster configured (give a kubeconfig file, set KUBECONFIG, or write ~/.kube/config)", where)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return cfg, nil
}

// Resources of Cilium's policies.
var (
	gvrCNP  = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumnetworkpolicies"}
	gvrCCNP = schema.GroupVersionResource{Group: "cilium.io", Version: "v2", Resource: "ciliumclusterwidenetworkpolicies"}
)

// livePageSize is how many objects LoadLive asks for at a time.
const livePageSize = 500

// LoadLive reads a cluster's policies and what evaluating them needs:
// CiliumNetworkPolicies and NetworkPolicies (of namespace only, if it is
// not empty), CiliumClusterwideNetworkPolicies, and all Namespaces,
// Services and Pods (toServices and named ports refer across
// namespaces). Each policy is decoded as [Load] decodes a file, with
// Source "cluster:Kind/namespace/name" ("cluster:Kind/name" for a
// CCNP). Policies are sorted by kind, namespace and name, the cluster's
// objects by namespace and name.
//
// As with [Load], objects that are not valid policies are reported in a
// *[LoadError], returned together with the policies that are and the
// cluster. Without Cilium's CRDs there are no Cilium policies; any other
// failed list (one RBAC forbids, say) is an error that names the
// resource, and nothing is returned with it.
func LoadLive(ctx context.Context, cfg *rest.Config, namespace string) ([]*Policy, *Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cnpgen"
	}
	if cfg.QPS == 0 && cfg.Burst == 0 {
		cfg.QPS, cfg.Burst = 50, 100 // client-go's 5 and 10 throttle paging in big clusters
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	l := &liveLoader{dyn: dyn, cs: cs, namespace: namespace, pageSize: livePageSize}
	return l.load(ctx)
}

type liveLoader struct {
	dyn       dynamic.Interface
	cs        kubernetes.Interface
	namespace string
	pageSize  int64
}

func (l *liveLoader) load(ctx context.Context) ([]*Policy, *Cluster, error) {
	var (
		cnps, ccnps, nps       []*Policy
		cnpBad, ccnpBad, npBad []error
		cluster                Cluster
		errs                   [6]error
		wg                     sync.WaitGroup
	)
	wg.Go(func() { cnps, cnpBad, errs[0] = l.ciliumPolicies(ctx, gvrCNP, KindCNP, l.namespace) })
	wg.Go(func() { ccnps, ccnpBad, errs[1] = l.ciliumPolicies(ctx, gvrCCNP, KindCCNP, "") })
	wg.Go(func() { nps, npBad, errs[2] = l.networkPolicies(ctx) })
	wg.Go(func() { cluster.Namespaces, errs[3] = l.namespaces(ctx) })
	wg.Go(func() { cluster.Services, errs[4] = l.services(ctx) })
	wg.Go(func() { cluster.Pods, errs[5] = l.pods(ctx) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err // the first in a fixed order, for stable messages
		}
	}
	policies := slices.Concat(cnps, ccnps, nps)
	slices.SortFunc(policies, func(a, b *Policy) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(cluster.Namespaces, func(a, b Namespace) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(cluster.Services, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	slices.SortFunc(cluster.Pods, func(a, b Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	// In the policies' order; the apiserver lists by namespace and name.
	if bad := slices.Concat(ccnpBad, cnpBad, npBad); len(bad) > 0 {
		return policies, &cluster, &LoadError{Errs: bad}
	}
	return policies, &cluster, nil
}

// liveSource is a live policy's Source.
func liveSource(kind, namespace, name string) string {
	if namespace == "" {
		return "cluster:" + kind + "/" + name
	}
	return "cluster:" + kind + "/" + namespace + "/" + name
}

// decodeLive decodes one policy object as Load decodes a file's.
func decodeLive(kind, namespace, name string, obj any) (*Policy, error) {
	src := liveSource(kind, namespace, name)
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	// loadObject is Load's decoding of one document, without the line
	// number a file's Source has.
	ps, err := loadObject(src, data)
	if err != nil {
		return nil, err
	}
	if len(ps) != 1 {
		return nil, fmt.Errorf("%s: decoded as %d policies", src, len(ps))
	}
	return ps[0], nil
}

// ciliumPolicies lists and decodes CNPs or CCNPs: it returns the
// policies that decoded, the errors of those that did not, and the
// error that stopped the list.
func (l *liveLoader) ciliumPolicies(ctx context.Context, gvr schema.GroupVersionResource, kind, namespace string) ([]*Policy, []error, error) {
	items, err := listPages(l.pageSize, resourceName(gvr, namespace), func(opts metav1.ListOptions) ([]unstructured.Unstructured, string, error) {
		list, err := l.dyn.Resource(gvr).Namespace(namespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return list.Items, list.GetContinue(), nil
	})
	if apierrors.IsNotFound(err) {
		return nil, nil, nil // the CRD is not installed
	}
	if err != nil {
		return nil, nil, err
	}
	var out []*Policy
	var bad []error
	for _, it := range items {
		if it.GetKind() == "" {
			it.SetAPIVersion(gvr.GroupVersion().String())
			it.SetKind(kind)
		}
		p, err := decodeLive(kind, it.GetNamespace(), it.GetName(), it.Object)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		out = append(out, p)
	}
	return out, bad, nil
}

// networkPolicies lists and decodes NetworkPolicies, as ciliumPolicies.
func (l *liveLoader) networkPolicies(ctx context.Context) ([]*Policy, []error, error) {
	gvr := networkingv1.SchemeGroupVersion.WithResource("networkpolicies")
	items, err := listPages(l.pageSize, resourceName(gvr, l.namespace), func(opts metav1.ListOptions) ([]networkingv1.NetworkPolicy, string, error) {
		list, err := l.cs.NetworkingV1().NetworkPolicies(l.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return list.Items, list.Continue, nil
	})
	if err != nil {
		return nil, nil, err
	}
	var out []*Policy
	var bad []error
	for i := range items {
		np := &items[i]
		// Typed lists leave out their items' kind.
		np.APIVersion, np.Kind = networkingv1.SchemeGroupVersion.String(), KindNetworkPolicy
		p, err := decodeLive(KindNetworkPolicy, np.Namespace, np.Name, np)
		if err != nil {
			bad = append(bad, err)
			continue
		}
		out = append(out, p)
	}
	return out, bad, nil
}

func (l *liveLoader) namespaces(ctx context.Context) ([]Namespace, error) {
	return listPages(l.pageSize, "namespaces", func(opts metav1.ListOptions) ([]Namespace, string, error) {
		list, err := l.cs.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		var out []Namespace
		for _, ns := range list.Items {
			out = append(out, Namespace{Name: ns.Name, Labels: ns.Labels})
		}
		return out, list.Continue, nil
	})
}

func (l *liveLoader) services(ctx context.Context) ([]Service, error) {
	return listPages(l.pageSize, "services", func(opts metav1.ListOptions) ([]Service, string, error) {
		list, err := l.cs.CoreV1().Services("").List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		var out []Service
		for _, s := range list.Items {
			svc := Service{Namespace: s.Namespace, Name: s.Name, Labels: s.Labels}
			// An empty selector is no selector, for Kubernetes and Cilium.
			if len(s.Spec.Selector) > 0 {
				svc.Selector = s.Spec.Selector
			}
			out = append(out, svc)
		}
		return out, list.Continue, nil
	})
}

// pods reads the pods that can be Cilium endpoints, with the named ports
// of their containers (not init containers), as the agent's
// GetPodMetadata does. Pods on the host network and pods that have
// terminated are no endpoints and are left out.
func (l *liveLoader) pods(ctx context.Context) ([]Pod, error) {
	return listPages(l.pageSize, "pods", func(opts metav1.ListOptions) ([]Pod, string, error) {
		list, err := l.cs.CoreV1().Pods("").List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		var out []Pod
		for _, p := range list.Items {
			if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			pod := Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels}
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == "" || cp.ContainerPort <= 0 || cp.ContainerPort > 65535 {
						continue
					}
					proto := string(cp.Protocol)
					if proto == "" {
						proto = string(corev1.ProtocolTCP)
					}
					pod.Ports = append(pod.Ports, NamedPort{Name: cp.Name, Port: uint16(cp.ContainerPort), Protocol: proto})
				}
			}
			out = append(out, pod)
		}
		return out, list.Continue, nil
	})
}

// resourceName names a resource in errors: "pods",
// "ciliumnetworkpolicies.cilium.io in namespace shop".
func resourceName(gvr schema.GroupVersionResource, namespace string) string {
	s := gvr.GroupResource().String()
	if namespace != "" {
		s += " in namespace " + namespace
	}
	return s
}

// listPages reads a list pageSize objects at a time: page lists one page
// and returns its items and the next page's continue token. When a
// continue token expires (the list changed too much meanwhile) it starts
// over with one unpaginated list, as client-go's pager does. Errors keep
// the apiserver's for apierrors' predicates.
func listPages[T any](pageSize int64, what string, page func(metav1.ListOptions) ([]T, string, error)) ([]T, error) {
	var out []T
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		items, next, err := page(opts)
		switch {
		case err == nil:
		case opts.Continue != "" && apierrors.IsResourceExpired(err):
			out, opts = nil, metav1.ListOptions{}
			continue
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("list %s: permission denied, RBAC must allow the user to list them: %w", what, err)
		default:
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, items...)
		if next == "" || opts.Limit == 0 {
			return out, nil
		}
		opts.Continue = next
	}
}
