package diff

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/cilium/cilium/pkg/fqdn/matchpattern"
	slim_metav1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/apis/meta/v1"
	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/policy/api"
)

// requirement is one term of a label selector, with its key parsed the
// way Cilium parses selector keys (labels.ParseSelectLabel: "app" is
// any:app, "k8s:app" only matches k8s labels).
type requirement struct {
	key    labels.Label
	op     slim_metav1.LabelSelectorOperator
	values []string
}

// labelSelector is an EndpointSelector compiled for matching identity
// labels, as pkg/policy/types.MatchesRequirements does.
type labelSelector struct {
	reqs []requirement
	// text is the selector as written after Cilium's rewriting, for
	// reports.
	text string
}

func compileSelector(es api.EndpointSelector) *labelSelector {
	ls := es.LabelSelector
	s := &labelSelector{}
	if ls == nil {
		return s
	}
	for k, v := range ls.MatchLabels {
		s.reqs = append(s.reqs, requirement{key: labels.ParseSelectLabel(k), op: slim_metav1.LabelSelectorOpIn, values: []string{v}})
	}
	for _, e := range ls.MatchExpressions {
		switch e.Operator {
		case slim_metav1.LabelSelectorOpIn, slim_metav1.LabelSelectorOpNotIn,
			slim_metav1.LabelSelectorOpExists, slim_metav1.LabelSelectorOpDoesNotExist:
		default:
			continue // rejected by Sanitize; Cilium skips it too
		}
		s.reqs = append(s.reqs, requirement{key: labels.ParseSelectLabel(e.Key), op: e.Operator, values: e.Values})
	}
	slices.SortFunc(s.reqs, func(a, b requirement) int { return strings.Compare(a.key.GetExtendedKey(), b.key.GetExtendedKey()) })
	s.text = selectorText(s.reqs)
	return s
}

func selectorText(reqs []requirement) string {
	if len(reqs) == 0 {
		return ""
	}
	var parts []string
	for _, r := range reqs {
		k := r.key.Key
		if r.key.Source != "" {
			k = r.key.Source + ":" + k
		}
		switch r.op {
		case slim_metav1.LabelSelectorOpIn:
			if len(r.values) == 1 {
				parts = append(parts, k+"="+r.values[0])
			} else {
				parts = append(parts, k+" in ("+strings.Join(r.values, ",")+")")
			}
		case slim_metav1.LabelSelectorOpNotIn:
			parts = append(parts, k+" notin ("+strings.Join(r.values, ",")+")")
		case slim_metav1.LabelSelectorOpExists:
			parts = append(parts, k)
		case slim_metav1.LabelSelectorOpDoesNotExist:
			parts = append(parts, "!"+k)
		}
	}
	return strings.Join(parts, ",")
}

func (s *labelSelector) matches(ls labels.LabelArray) bool {
	for i := range s.reqs {
		r := &s.reqs[i]
		v, ok := ls.LookupLabel(&r.key)
		switch r.op {
		case slim_metav1.LabelSelectorOpIn:
			if !ok || !slices.Contains(r.values, v) {
				return false
			}
		case slim_metav1.LabelSelectorOpNotIn:
			if ok && slices.Contains(r.values, v) {
				return false
			}
		case slim_metav1.LabelSelectorOpExists:
			if !ok {
				return false
			}
		case slim_metav1.LabelSelectorOpDoesNotExist:
			if ok {
				return false
			}
		}
	}
	return true
}

// peerSelector is one L3 peer of a rule: a label selector (endpoints,
// entities, nodes), a CIDR with exceptions, or an FQDN selector.
type peerSelector struct {
	labels *labelSelector
	cidr   netip.Prefix
	except []netip.Prefix
	fqdn   *fqdnSelector
	// unresolved is set for peers that need cluster state that was not
	// given (toServices, CIDR groups); they match nothing.
	unresolved string
	text       string
}

func (p *peerSelector) matches(id *Identity) bool {
	switch {
	case p.unresolved != "":
		return false
	case p.labels != nil:
		return p.labels.matches(id.Labels)
	case p.fqdn != nil:
		return p.fqdn.matches(id)
	case p.cidr.IsValid():
		// CIDR selectors only select identities with a world label
		// (policy-cidr-match-mode empty), and the identity of an address
		// carries the CIDR labels of every policy prefix containing it.
		if !id.world || !id.IP.IsValid() || !p.cidr.Contains(id.IP) {
			return false
		}
		for _, ex := range p.except {
			if ex.Contains(id.IP) {
				return false
			}
		}
		return true
	}
	return false
}

// fqdnSelector matches the identities the DNS proxy gives the addresses
// of matching names: they carry the label fqdn:<selector text>. Flows
// from Hubble versions that do not show those labels are matched by
// their destination names.
type fqdnSelector struct {
	label labels.Label
	re    *regexp.Regexp
}

func compileFQDN(s api.FQDNSelector) (*fqdnSelector, error) {
	re, err := s.ToRegex()
	if err != nil {
		return nil, err
	}
	return &fqdnSelector{label: s.IdentityLabel(), re: re}, nil
}

func (f *fqdnSelector) matches(id *Identity) bool {
	if id.Labels.IntersectsLabel(f.label) {
		return true
	}
	if !id.world {
		return false
	}
	for _, n := range id.Names {
		if f.re.MatchString(fqdnName(n)) {
			return true
		}
	}
	return false
}

// fqdnName lower-cases a name and adds the trailing dot, as Cilium's
// matchers expect.
func fqdnName(n string) string {
	n = strings.ToLower(n)
	if !strings.HasSuffix(n, ".") {
		n += "."
	}
	return n
}

// dnsMatcher is a rules.dns entry.
type dnsMatcher struct {
	re *regexp.Regexp
}

func compileDNS(r api.PortRuleDNS) (*dnsMatcher, error) {
	var pattern string
	if r.MatchName != "" {
		pattern = fqdnName(r.MatchName)
	} else {
		pattern = matchpattern.Sanitize(r.MatchPattern)
	}
	re, err := matchpattern.Validate(pattern)
	if err != nil {
		return nil, err
	}
	return &dnsMatcher{re: re}, nil
}
