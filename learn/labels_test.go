package learn

import (
	"log/slog"
	"testing"

	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/labelsfilter"
)

// TestLabelFilterMatchesCilium checks our copy of Cilium's default
// identity label filter against Cilium's own.
func TestLabelFilterMatchesCilium(t *testing.T) {
	if err := labelsfilter.ParseLabelPrefixCfg(slog.New(slog.DiscardHandler), nil, nil, ""); err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"app", "app.kubernetes.io/name", "app.kubernetes.io/instance", "version", "k8s-app", "name", "tier",
		"pod-template-hash", "pod-template-generation", "controller-revision-hash", "controller-uid",
		"statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index",
		"batch.kubernetes.io/job-completion-index", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name",
		"io.kubernetes.pod.namespace", "io.kubernetes.pod.name", "io.cilium.k8s.namespace.labels.team",
		"io.cilium.k8s.policy.cluster", "io.cilium.k8s.policy.serviceaccount", "io.cilium.k8s.policy.name",
		"kubernetes.io/hostname", "topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone",
		"beta.kubernetes.io/arch", "k8s.io/foo", "annotation.foo", "annotationx", "etcd_node",
		"security.istio.io/tlsMode", "service.istio.io/canonical-name", "sidecar.istio.io/inject",
		"helm.sh/chart", "example.com/kubernetes.io", "x-k8s.io/y", "node.kubernetes.io/instance-type",
	}
	for _, src := range []string{"k8s", "container", "any", "reserved"} {
		for _, key := range keys {
			l := labels.NewLabel(key, "v", src)
			id, _ := labelsfilter.Filter(labels.Labels{l.Key: l})
			want := len(id) == 1
			if got := identityLabel(src, key); got != want {
				t.Errorf("%s:%s: identityLabel = %v, Cilium keeps it: %v", src, key, got, want)
			}
		}
	}
}
