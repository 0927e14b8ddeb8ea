package diff

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	k8sCiliumUtils "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/utils"
	slim_metav1 "github.com/cilium/cilium/pkg/k8s/slim/k8s/apis/meta/v1"
	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/policy/api"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// entry is one ingress, ingressDeny, egress or egressDeny item of a
// policy, after Cilium's rewriting: the unit Cilium's policy repository
// works with (pkg/policy/types.PolicyEntry).
type entry struct {
	policy      *Policy
	ingress     bool
	deny        bool
	defaultDeny bool
	subject     *labelSelector
	// l3 nil selects no peer (an explicitly empty list such as
	// fromEndpoints: []); l3 empty with ports selects every peer.
	l3 []*peerSelector
	l4 []portRule
	// where names the item in its policy: "spec.egress[2]",
	// "specs[1].ingressDeny[0]"; rule and item index it in Policy.Rules.
	where      string
	rule, item int
	// nsKey is the namespace the entry's subjects live in ("" for
	// cluster-wide policies).
	namespace string
}

// portRule is one toPorts entry (or one ICMP rule).
type portRule struct {
	ports []portProto
	http  []*httpMatcher
	dns   []*dnsMatcher
	// hasL7 says the port rule has L7 rules of some type.
	hasL7 bool
}

// portProto is one port (or range, or named port) and protocol.
type portProto struct {
	proto   string // TCP, UDP, SCTP, ANY, ICMP, ICMPV6
	port    uint16
	endPort uint16
	named   string
	allPort bool
}

type httpMatcher struct {
	method, path, host *regexp.Regexp
	headers            []string
	text               string
}

// ruleLabels logs nothing: ParseToCiliumRule only warns about illegal
// namespaces in CNP subjects, which it then overwrites.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// compile turns a policy into entries.
func (ev *Evaluator) compile(p *Policy) ([]*entry, error) {
	if p.Kind == KindNetworkPolicy {
		return ev.compileNetworkPolicy(p)
	}
	ns := p.Namespace
	if p.Kind == KindCCNP {
		ns = ""
	}
	var out []*entry
	for i, r := range p.Rules {
		prefix := p.rulePath(i) + "."
		c := r.DeepCopy()
		if err := c.Sanitize(); err != nil {
			return nil, fmt.Errorf("%s: %s %s: %s: %w", p.Source, p.Kind, p.Name, strings.TrimSuffix(prefix, "."), err)
		}
		if p.Kind == KindCNP && c.NodeSelector.LabelSelector != nil {
			return nil, fmt.Errorf("%s: %s %s: %s: a CiliumNetworkPolicy cannot have a nodeSelector", p.Source, p.Kind, p.Name, strings.TrimSuffix(prefix, "."))
		}
		if c.NodeSelector.LabelSelector != nil {
			// Host policies need the host firewall, which this
			// evaluator does not model: the host is never a subject.
			continue
		}
		parsed := k8sCiliumUtils.ParseToCiliumRule(quietLogger, ev.clusterName, ns, p.Name, types.UID(""), c)
		subject := compileSelector(parsed.EndpointSelector)
		es, err := ev.ruleEntries(p, parsed, subject, ns, prefix, i)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", p.Source, p.Kind, p.Name, err)
		}
		out = append(out, es...)
	}
	return out, nil
}

func (ev *Evaluator) ruleEntries(p *Policy, r *api.Rule, subject *labelSelector, ns, prefix string, ruleIdx int) ([]*entry, error) {
	ingressDD := r.EnableDefaultDeny.Ingress == nil || *r.EnableDefaultDeny.Ingress
	egressDD := r.EnableDefaultDeny.Egress == nil || *r.EnableDefaultDeny.Egress
	var out []*entry
	add := func(ingress, deny bool, kind string, i int, l3 []*peerSelector, ports api.PortRules, icmps api.ICMPRules) error {
		where := fmt.Sprintf("%s%s[%d]", prefix, kind, i)
		l4, err := compilePorts(ports, icmps)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		dd := egressDD
		if ingress {
			dd = ingressDD
		}
		out = append(out, &entry{policy: p, subject: subject, namespace: ns, ingress: ingress, deny: deny, defaultDeny: dd,
			where: where, rule: ruleIdx, item: i, l3: l3, l4: l4})
		return nil
	}
	for i, in := range r.Ingress {
		if err := add(true, false, "ingress", i, ev.ingressPeers(in.IngressCommonRule, ns), in.ToPorts, in.ICMPs); err != nil {
			return nil, err
		}
	}
	for i, in := range r.IngressDeny {
		if err := add(true, true, "ingressDeny", i, ev.ingressPeers(in.IngressCommonRule, ns), denyPorts(in.ToPorts), in.ICMPs); err != nil {
			return nil, err
		}
	}
	for i, eg := range r.Egress {
		if err := add(false, false, "egress", i, ev.egressPeers(eg.EgressCommonRule, eg.ToFQDNs, true, ns), eg.ToPorts, eg.ICMPs); err != nil {
			return nil, err
		}
	}
	for i, eg := range r.EgressDeny {
		// The agent resolves toServices in egress rules only
		// (pkg/policy/k8s/service.go processRule): in egressDeny it
		// leaves no peer, so toPorts then deny every peer.
		if err := add(false, true, "egressDeny", i, ev.egressPeers(eg.EgressCommonRule, nil, false, ns), denyPorts(eg.ToPorts), eg.ICMPs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (ev *Evaluator) ingressPeers(in api.IngressCommonRule, ns string) []*peerSelector {
	return ev.l3(in.FromEndpoints, in.FromNodes, in.FromEntities, in.FromCIDR, in.FromCIDRSet, nil, nil, ns, len(in.FromGroups) > 0)
}

func (ev *Evaluator) egressPeers(eg api.EgressCommonRule, fqdns api.FQDNSelectorSlice, services bool, ns string) []*peerSelector {
	var svcs []api.Service
	if services {
		svcs = eg.ToServices
	}
	return ev.l3(eg.ToEndpoints, eg.ToNodes, eg.ToEntities, eg.ToCIDR, eg.ToCIDRSet, fqdns, svcs, ns, len(eg.ToGroups) > 0)
}

// l3 merges a rule's peers as pkg/policy/utils.mergeEndpointSelectors
// does: an explicitly empty list selects nothing (nil); no peer field at
// all is the wildcard (empty, not nil).
func (ev *Evaluator) l3(endpoints, nodes api.EndpointSelectorSlice, entities api.EntitySlice, cidrs api.CIDRSlice, cidrSets api.CIDRRuleSlice, fqdns api.FQDNSelectorSlice, services []api.Service, ns string, groups bool) []*peerSelector {
	if (endpoints != nil && len(endpoints) == 0) ||
		(nodes != nil && len(nodes) == 0) ||
		(entities != nil && len(entities) == 0) ||
		(cidrs != nil && len(cidrs) == 0) ||
		(cidrSets != nil && len(cidrSets) == 0) {
		return nil
	}
	out := []*peerSelector{}
	for _, es := range endpoints {
		s := compileSelector(es)
		out = append(out, &peerSelector{labels: s, text: "endpoints " + ev.peerText(s)})
	}
	for _, es := range nodes {
		s := compileSelector(es)
		out = append(out, &peerSelector{labels: s, text: "nodes " + s.text})
	}
	for _, en := range entities {
		for _, es := range ev.entities[en] {
			out = append(out, &peerSelector{labels: es, text: "entity " + string(en)})
		}
	}
	for _, c := range cidrs {
		pfx, err := parseCIDR(string(c))
		if err == nil {
			out = append(out, &peerSelector{cidr: pfx, text: "cidr " + pfx.String()})
		}
	}
	for _, c := range cidrSets {
		if c.Cidr == "" {
			ref := string(c.CIDRGroupRef)
			if ref == "" {
				ref = "cidrGroupSelector"
			}
			out = append(out, &peerSelector{unresolved: "CiliumCIDRGroup " + ref + " is not resolved", text: "cidrGroup " + ref})
			continue
		}
		pfx, err := parseCIDR(string(c.Cidr))
		if err != nil {
			continue
		}
		ps := &peerSelector{cidr: pfx, text: "cidr " + pfx.String()}
		for _, ex := range c.ExceptCIDRs {
			if e, err := parseCIDR(string(ex)); err == nil {
				ps.except = append(ps.except, e)
				ps.text += " except " + e.String()
			}
		}
		out = append(out, ps)
	}
	for _, f := range fqdns {
		fs, err := compileFQDN(f)
		if err != nil {
			continue // Sanitize accepted it; ToRegex cannot fail then
		}
		out = append(out, &peerSelector{fqdn: fs, text: "fqdn " + fs.label.Key})
	}
	for _, svc := range services {
		out = append(out, ev.resolveService(svc, ns)...)
	}
	if groups {
		out = append(out, &peerSelector{unresolved: "toGroups/fromGroups need the cloud provider", text: "groups"})
	}
	return out
}

func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	return p.Masked(), nil
}

func denyPorts(rules api.PortDenyRules) api.PortRules {
	if rules == nil {
		return nil
	}
	out := make(api.PortRules, 0, len(rules))
	for _, r := range rules {
		out = append(out, api.PortRule{Ports: r.GetPortProtocols()})
	}
	return out
}

func compilePorts(ports api.PortRules, icmps api.ICMPRules) ([]portRule, error) {
	var out []portRule
	for _, pr := range ports {
		r := portRule{}
		for _, pp := range pr.Ports {
			c, err := compilePort(pp)
			if err != nil {
				return nil, err
			}
			r.ports = append(r.ports, c)
		}
		if pr.Rules != nil {
			for _, h := range pr.Rules.HTTP {
				m, err := compileHTTP(h)
				if err != nil {
					return nil, err
				}
				r.http = append(r.http, m)
				r.hasL7 = true
			}
			for _, d := range pr.Rules.DNS {
				m, err := compileDNS(d)
				if err != nil {
					return nil, err
				}
				r.dns = append(r.dns, m)
				r.hasL7 = true
			}
		}
		out = append(out, r)
	}
	for _, ir := range icmps {
		r := portRule{}
		for _, pp := range ir.GetPortProtocols() {
			c, err := compilePort(pp)
			if err != nil {
				return nil, err
			}
			r.ports = append(r.ports, c)
		}
		out = append(out, r)
	}
	return out, nil
}

func compilePort(pp api.PortProtocol) (portProto, error) {
	proto := strings.ToUpper(string(pp.Protocol))
	if proto == "" {
		proto = "ANY"
	}
	c := portProto{proto: proto}
	if pp.Port == "" || pp.Port == "0" {
		c.allPort = true
		return c, nil
	}
	n, err := strconv.ParseUint(pp.Port, 10, 16)
	if err != nil {
		c.named = strings.ToLower(pp.Port)
		return c, nil
	}
	c.port = uint16(n)
	if pp.EndPort > int32(n) && pp.EndPort <= 65535 {
		c.endPort = uint16(pp.EndPort)
	}
	return c, nil
}

func compileHTTP(h api.PortRuleHTTP) (*httpMatcher, error) {
	m := &httpMatcher{headers: h.Headers}
	var parts []string
	var err error
	anchor := func(s string) (*regexp.Regexp, error) {
		if s == "" {
			return nil, nil
		}
		// Envoy's safe_regex matches the whole value.
		return regexp.Compile("^(?:" + s + ")$")
	}
	if m.method, err = anchor(h.Method); err != nil {
		return nil, fmt.Errorf("http method %q: %w", h.Method, err)
	}
	if m.path, err = anchor(h.Path); err != nil {
		return nil, fmt.Errorf("http path %q: %w", h.Path, err)
	}
	if m.host, err = anchor(h.Host); err != nil {
		return nil, fmt.Errorf("http host %q: %w", h.Host, err)
	}
	for _, hm := range h.HeaderMatches {
		if hm != nil && hm.Mismatch == "" {
			m.headers = append(m.headers, hm.Name+": "+hm.Value)
		}
	}
	if h.Method != "" {
		parts = append(parts, "method="+h.Method)
	}
	if h.Path != "" {
		parts = append(parts, "path="+h.Path)
	}
	if h.Host != "" {
		parts = append(parts, "host="+h.Host)
	}
	m.text = strings.Join(parts, " ")
	return m, nil
}

// compileNetworkPolicy translates a Kubernetes NetworkPolicy the way
// Cilium's pkg/k8s/network_policy.go ParseNetworkPolicy does.
func (ev *Evaluator) compileNetworkPolicy(p *Policy) ([]*entry, error) {
	np := p.NetworkPolicy
	ns := p.Namespace
	subject := compileSelector(api.NewESFromK8sLabelSelector(labels.LabelSourceK8sKeyPrefix, npPodSelector(toSlim(&np.Spec.PodSelector), ns)))
	var ingresses, egresses []*entry
	for i, in := range np.Spec.Ingress {
		l4, err := npPorts(in.Ports)
		if err != nil {
			return nil, fmt.Errorf("%s: NetworkPolicy %s: spec.ingress[%d]: %w", p.Source, p.Name, i, err)
		}
		where := fmt.Sprintf("spec.ingress[%d]", i)
		if len(in.From) == 0 {
			ingresses = append(ingresses, &entry{ingress: true, l3: []*peerSelector{ev.wildcardPeer()}, l4: l4, where: where})
		}
		for j := range in.From {
			ingresses = append(ingresses, &entry{ingress: true, l3: ev.npPeer(&in.From[j], ns), l4: l4, where: fmt.Sprintf("%s.from[%d]", where, j)})
		}
	}
	for i, eg := range np.Spec.Egress {
		l4, err := npPorts(eg.Ports)
		if err != nil {
			return nil, fmt.Errorf("%s: NetworkPolicy %s: spec.egress[%d]: %w", p.Source, p.Name, i, err)
		}
		where := fmt.Sprintf("spec.egress[%d]", i)
		if len(eg.To) == 0 {
			egresses = append(egresses, &entry{l3: []*peerSelector{ev.wildcardPeer()}, l4: l4, where: where})
		}
		for j := range eg.To {
			egresses = append(egresses, &entry{l3: ev.npPeer(&eg.To[j], ns), l4: l4, where: fmt.Sprintf("%s.to[%d]", where, j)})
		}
	}
	hasType := func(t networkingv1.PolicyType) bool {
		for _, pt := range np.Spec.PolicyTypes {
			if pt == t {
				return true
			}
		}
		return false
	}
	if len(ingresses) == 0 && (hasType(networkingv1.PolicyTypeIngress) || !hasType(networkingv1.PolicyTypeEgress)) {
		ingresses = append(ingresses, &entry{ingress: true, where: "spec.policyTypes[Ingress]"})
	}
	if len(egresses) == 0 && hasType(networkingv1.PolicyTypeEgress) {
		egresses = append(egresses, &entry{where: "spec.policyTypes[Egress]"})
	}
	out := append(ingresses, egresses...)
	for _, e := range out {
		e.policy, e.subject, e.defaultDeny, e.namespace = p, subject, true, ns
	}
	return out, nil
}

func (ev *Evaluator) wildcardPeer() *peerSelector {
	return &peerSelector{labels: &labelSelector{text: "{}"}, text: "all"}
}

func (ev *Evaluator) npPeer(peer *networkingv1.NetworkPolicyPeer, ns string) []*peerSelector {
	if peer.IPBlock != nil {
		pfx, err := parseCIDR(peer.IPBlock.CIDR)
		if err != nil {
			return nil
		}
		ps := &peerSelector{cidr: pfx, text: "ipBlock " + pfx.String()}
		for _, ex := range peer.IPBlock.Except {
			if e, err := parseCIDR(ex); err == nil {
				ps.except = append(ps.except, e)
				ps.text += " except " + e.String()
			}
		}
		return []*peerSelector{ps}
	}
	pod := toSlim(peer.PodSelector)
	if pod == nil {
		pod = &slim_metav1.LabelSelector{}
	}
	if ev.clusterName != "" && !selectsCluster(pod) {
		if pod.MatchLabels == nil {
			pod.MatchLabels = map[string]string{}
		}
		pod.MatchLabels[labelPolicyCluster] = ev.clusterName
	}
	var es api.EndpointSelector
	if peer.NamespaceSelector != nil {
		es = api.NewESFromK8sLabelSelector(labels.LabelSourceK8sKeyPrefix, npNamespaceSelector(toSlim(peer.NamespaceSelector)), pod)
	} else {
		es = api.NewESFromK8sLabelSelector(labels.LabelSourceK8sKeyPrefix, npPodSelector(pod, ns))
	}
	s := compileSelector(es)
	return []*peerSelector{{labels: s, text: "endpoints " + ev.peerText(s)}}
}

// peerText shows a peer selector as its author wrote it: without the
// cluster Cilium adds and without the any: source of plain keys.
func (ev *Evaluator) peerText(s *labelSelector) string {
	var reqs []requirement
	for _, r := range s.reqs {
		if r.key.Key == labelPolicyCluster && len(r.values) == 1 && r.values[0] == ev.clusterName {
			continue
		}
		if r.key.Source == labels.LabelSourceAny {
			r.key.Source = ""
		}
		reqs = append(reqs, r)
	}
	return "{" + selectorText(reqs) + "}"
}

const (
	labelPodNamespace   = "io.kubernetes.pod.namespace"
	labelPolicyCluster  = "io.cilium.k8s.policy.cluster"
	labelNamespaceLabel = "io.cilium.k8s.namespace.labels"
)

func selectsCluster(s *slim_metav1.LabelSelector) bool {
	if s.MatchLabels[labelPolicyCluster] != "" {
		return true
	}
	for _, e := range s.MatchExpressions {
		if e.Key == labelPolicyCluster {
			return true
		}
	}
	return false
}

func npNamespaceSelector(ns *slim_metav1.LabelSelector) *slim_metav1.LabelSelector {
	out := &slim_metav1.LabelSelector{MatchLabels: map[string]string{}}
	for k, v := range ns.MatchLabels {
		out.MatchLabels[labelNamespaceLabel+"."+k] = v
	}
	for _, e := range ns.MatchExpressions {
		e.Key = labelNamespaceLabel + "." + e.Key
		out.MatchExpressions = append(out.MatchExpressions, e)
	}
	if len(out.MatchLabels) == 0 && len(out.MatchExpressions) == 0 {
		out.MatchExpressions = []slim_metav1.LabelSelectorRequirement{{Key: labelPodNamespace, Operator: slim_metav1.LabelSelectorOpExists}}
	}
	return out
}

func npPodSelector(in *slim_metav1.LabelSelector, ns string) *slim_metav1.LabelSelector {
	out := &slim_metav1.LabelSelector{MatchLabels: map[string]string{}}
	for k, v := range in.MatchLabels {
		out.MatchLabels[k] = v
	}
	out.MatchLabels[labelPodNamespace] = ns
	out.MatchExpressions = append(out.MatchExpressions, in.MatchExpressions...)
	return out
}

// toSlim converts an apimachinery LabelSelector to Cilium's slim one.
func toSlim(s *metav1.LabelSelector) *slim_metav1.LabelSelector {
	if s == nil {
		return nil
	}
	out := &slim_metav1.LabelSelector{}
	if s.MatchLabels != nil {
		out.MatchLabels = map[string]string{}
		for k, v := range s.MatchLabels {
			out.MatchLabels[k] = v
		}
	}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, slim_metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: slim_metav1.LabelSelectorOperator(e.Operator), Values: append([]string(nil), e.Values...),
		})
	}
	return out
}

func npPorts(ports []networkingv1.NetworkPolicyPort) ([]portRule, error) {
	var out []portRule
	for _, p := range ports {
		proto := "TCP"
		if p.Protocol != nil {
			proto = strings.ToUpper(string(*p.Protocol))
			switch proto {
			case "TCP", "UDP", "SCTP":
			default:
				return nil, fmt.Errorf("protocol %q", *p.Protocol)
			}
		}
		pp := api.PortProtocol{Port: "0", Protocol: api.L4Proto(proto)}
		if p.Port != nil {
			pp.Port = p.Port.String()
		}
		if p.EndPort != nil {
			pp.EndPort = *p.EndPort
		}
		c, err := compilePort(pp)
		if err != nil {
			return nil, err
		}
		out = append(out, portRule{ports: []portProto{c}})
	}
	return out, nil
}
