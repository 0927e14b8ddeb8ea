package learn

import (
	"regexp"
	"strings"
)

// Cilium's identity label filter, as configured by default
// (pkg/labelsfilter defaultLabelPrefixCfg in cilium v1.20.2). Labels it
// drops are not part of an identity, so no policy can select them; flows
// from clusters with a custom filter may still carry some, and the learner
// drops them too. TestLabelFilterMatchesCilium checks this against Cilium.
var defaultLabelPrefixes = func() []labelPrefix {
	exprs := []string{
		`reserved:.*`,
		regexp.QuoteMeta("io.kubernetes.pod.namespace"),
		regexp.QuoteMeta("io.cilium.k8s.namespace.labels"),
		regexp.QuoteMeta("app.kubernetes.io"),
		regexp.QuoteMeta("io.cilium.k8s.policy.cluster"),
		regexp.QuoteMeta("io.cilium.k8s.policy.serviceaccount"),
		`!io\.kubernetes`,
		`!kubernetes\.io`,
		"!" + regexp.QuoteMeta("statefulset.kubernetes.io/pod-name"),
		"!" + regexp.QuoteMeta("apps.kubernetes.io/pod-index"),
		"!" + regexp.QuoteMeta("batch.kubernetes.io/job-completion-index"),
		"!" + regexp.QuoteMeta("batch.kubernetes.io/controller-uid"),
		`!.*beta\.kubernetes\.io`,
		`!k8s\.io`,
		`!pod-template-generation`,
		`!pod-template-hash`,
		`!controller-revision-hash`,
		`!controller-uid`,
		`!annotation.*`,
		`!etcd_node`,
		`!topology\.kubernetes\.io`,
	}
	out := make([]labelPrefix, 0, len(exprs))
	for _, e := range exprs {
		var p labelPrefix
		if src, rest, ok := strings.Cut(e, ":"); ok {
			p.source, e = src, rest
		}
		if strings.HasPrefix(e, "!") {
			p.ignore, e = true, e[1:]
		}
		p.expr = regexp.MustCompile(e)
		out = append(out, p)
	}
	return out
}()

type labelPrefix struct {
	source string
	ignore bool
	expr   *regexp.Regexp
}

// identityLabel reports whether Cilium's default label filter keeps the
// label (source, key) in an identity.
func identityLabel(source, key string) bool {
	included, ignored := 0, 0
	for _, p := range defaultLabelPrefixes {
		if p.source != "" && p.source != source {
			continue
		}
		m := p.expr.FindStringIndex(key)
		if m == nil || m[0] != 0 {
			continue
		}
		if p.ignore {
			if ignored == 0 || m[1] < ignored {
				ignored = m[1]
			}
		} else if m[1] > included {
			included = m[1]
		}
	}
	return ignored == 0 || included > ignored
}

// splitLabel splits "source:key=value".
func splitLabel(l string) (source, key, value string) {
	source, rest, _ := strings.Cut(l, ":")
	key, value, _ = strings.Cut(rest, "=")
	return source, key, value
}
