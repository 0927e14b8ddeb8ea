package diff

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/cilium/pkg/labels"
	"github.com/cilium/cilium/pkg/policy/api"

	"github.com/cnpgen/cnpgen/learn"
)

// Options configure an [Evaluator] the way the agent is configured.
type Options struct {
	// ClusterName is the cluster's name (Cilium's default is "default");
	// peer selectors are limited to it, as with the agent's default
	// policy-default-local-cluster=true.
	ClusterName string
	// Cluster holds the Services and Pods that toServices and named ports
	// need; without it those are reported as unresolved.
	Cluster *Cluster
}

// Evaluator decides whether policies allow connections, with the L3/L4
// semantics of Cilium v1.20.2 (default-deny, enforcement, deny
// precedence, namespace and cluster scoping) and its L7 HTTP and DNS
// rules. It is safe for concurrent use.
type Evaluator struct {
	clusterName string
	cluster     *Cluster
	entities    map[api.Entity][]*labelSelector
	policies    []*Policy
	entries     []*entry

	// byNamespace holds entries of namespaced policies, global those of
	// cluster-wide ones: a subject is only ever selected by these two.
	byNamespace map[string][]*entry
	global      []*entry

	mu       sync.Mutex
	subjects map[string]*subjectPolicy
	verdicts map[verdictKey]Verdict
}

// subjectPolicy is what applies to one identity: the entries selecting
// it, per direction.
type subjectPolicy struct {
	dirs [2]direction // 0 egress, 1 ingress
}

type direction struct {
	enforced    bool
	defaultDeny bool
	deny, allow []*entry
	// defaultDenyBy is the first policy that asks for default deny.
	defaultDenyBy *Policy
	// policies lists every policy with an entry in this direction.
	policies []*Policy
}

var entitiesMu sync.Mutex

// NewEvaluator compiles policies. A policy the agent would reject is an
// error that names its file and line; nothing is silently dropped.
func NewEvaluator(policies []*Policy, opts Options) (*Evaluator, error) {
	ev := &Evaluator{
		clusterName: opts.ClusterName,
		cluster:     opts.Cluster,
		policies:    policies,
		byNamespace: map[string][]*entry{},
		subjects:    map[string]*subjectPolicy{},
		verdicts:    map[verdictKey]Verdict{},
	}
	if ev.clusterName == "" {
		ev.clusterName = "default"
	}
	ev.entities = entitySelectors(ev.clusterName)
	// Attribution (the first allowing rule) and reports follow policy
	// order: make it independent of the order the inputs came in.
	policies = slices.Clone(policies)
	slices.SortStableFunc(policies, func(a, b *Policy) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name), strings.Compare(a.Source, b.Source))
	})
	ev.policies = policies
	for _, p := range policies {
		es, err := ev.compile(p)
		if err != nil {
			return nil, err
		}
		ev.entries = append(ev.entries, es...)
		for _, e := range es {
			if e.namespace == "" {
				ev.global = append(ev.global, e)
			} else {
				ev.byNamespace[e.namespace] = append(ev.byNamespace[e.namespace], e)
			}
		}
	}
	return ev, nil
}

// entitySelectors compiles Cilium's entity table for a cluster name
// (api.InitEntities adds the cluster label to the "cluster" entity).
func entitySelectors(clusterName string) map[api.Entity][]*labelSelector {
	entitiesMu.Lock()
	defer entitiesMu.Unlock()
	api.InitEntities(clusterName)
	out := map[api.Entity][]*labelSelector{}
	for en, sels := range api.EntitySelectorMapping {
		for _, es := range sels {
			out[en] = append(out[en], compileSelector(es))
		}
	}
	return out
}

// Policies returns the policies the evaluator was built from.
func (ev *Evaluator) Policies() []*Policy { return ev.policies }

// Identity is one end of a connection as the policy engine sees it.
type Identity struct {
	// Labels are the security identity's labels.
	Labels labels.LabelArray
	// Endpoint says the identity is a Cilium endpoint (a pod, the
	// cilium-health or the ingress endpoint), which policy can select.
	Endpoint bool
	// Init is set for endpoints still initialising (reserved:init), which
	// are always default-deny.
	Init bool
	// Host is the local node: ingress from it is always allowed
	// (allow-localhost, the agent's default in Kubernetes mode).
	Host bool
	// IP is the address, needed for CIDR rules.
	IP netip.Addr
	// Names are DNS names known for IP, for toFQDNs.
	Names []string
	// Namespace and Pod name the pod, for named ports.
	Namespace, Pod string

	world bool
	key   string
}

// NewIdentity builds an identity from labels in Cilium's
// "source:key=value" form, as Hubble prints them.
func NewIdentity(lbls []string, ip netip.Addr, names []string) *Identity {
	id := &Identity{Labels: labels.ParseLabelArray(lbls...), IP: ip, Names: names}
	var reserved, ns bool
	for _, l := range id.Labels {
		switch l.Source {
		case labels.LabelSourceReserved:
			switch l.Key {
			case labels.IDNameWorld, labels.IDNameWorldIPv4, labels.IDNameWorldIPv6:
				id.world = true
				reserved = true
			case labels.IDNameHealth, labels.IDNameIngress:
				id.Endpoint = true
			case labels.IDNameInit:
				id.Endpoint, id.Init = true, true
			case labels.IDNameHost:
				id.Host = true
				reserved = true
			default:
				reserved = true
			}
		case labels.LabelSourceK8s:
			if l.Key == labelPodNamespace {
				ns = true
				id.Namespace = l.Value
			}
		}
	}
	if ns && !reserved {
		id.Endpoint = true
	}
	if !id.world {
		// Only CIDR and FQDN rules look at addresses and names.
		id.IP, id.Names = netip.Addr{}, nil
	}
	var b strings.Builder
	b.WriteString(id.Labels.String())
	if id.world {
		b.WriteByte('|')
		b.WriteString(id.IP.String())
		for _, n := range names {
			b.WriteByte('|')
			b.WriteString(n)
		}
	}
	id.key = b.String()
	return id
}

// Decision is one end's verdict.
type Decision string

const (
	Allowed Decision = "allowed"
	Denied  Decision = "denied"
	// None: the end is not a Cilium endpoint, or nothing enforces policy
	// in that direction for it.
	None Decision = "none"
)

// Request is a connection to decide: its initiator, its server, the
// protocol and server port (ICMP type for ICMP), and the L7 request if
// the proxy saw one.
type Request struct {
	Src, Dst *Identity
	Proto    learn.Protocol
	Port     uint16
	HTTP     *HTTPRequest
	DNSQuery string
}

// HTTPRequest is an HTTP request as the L7 proxy saw it.
type HTTPRequest struct {
	Method, Path, Host string
	Headers            map[string]string
}

// Verdict is the decision for a connection: both ends must allow it.
type Verdict struct {
	Allowed bool   `json:"allowed"`
	Egress  Result `json:"egress"`
	Ingress Result `json:"ingress"`
}

// Result is one end's decision and what made it.
type Result struct {
	Decision Decision
	// Policy decided it, or is nil for defaults.
	Policy *Policy
	// Rule is the entry in Policy ("egress[0]"), or why no rule decided:
	// "default-deny", "no-default-deny", "allow-localhost",
	// "not-an-endpoint", "not-enforced".
	Rule string
	// L7 says the request was denied by the L7 rules of an allowing rule
	// (HTTP 403 or DNS REFUSED rather than a drop).
	L7 bool
	// Unresolved lists references that could not be resolved and would
	// otherwise have been considered (toServices, named ports).
	Unresolved []string

	by *entry
	// peer and port locate what matched in by: the index of the peer
	// selector (-1: any peer) and of the port rule and port (-1: all).
	peer, portRule, port int
}

// Ref names the deciding policy and rule.
func (r Result) Ref() string {
	if r.Policy == nil {
		return r.Rule
	}
	return r.Policy.Ref() + " " + r.Rule
}

// Evaluate decides a request. Verdicts of L3/L4 requests are cached by
// identity, protocol and port: the flows of a capture repeat a few
// thousand such combinations. The Results' slices are shared: read only.
func (ev *Evaluator) Evaluate(req *Request) Verdict {
	l4 := req.HTTP == nil && req.DNSQuery == ""
	k := verdictKey{req.Src.key, req.Dst.key, req.Dst.Pod, req.Proto, req.Port}
	if l4 {
		ev.mu.Lock()
		v, ok := ev.verdicts[k]
		ev.mu.Unlock()
		if ok {
			return v
		}
	}
	v := Verdict{
		Egress:  ev.decide(req.Src, req.Dst, false, req),
		Ingress: ev.decide(req.Dst, req.Src, true, req),
	}
	v.Allowed = v.Egress.Decision != Denied && v.Ingress.Decision != Denied
	if l4 {
		ev.mu.Lock()
		if len(ev.verdicts) >= maxCached {
			clear(ev.verdicts)
		}
		ev.verdicts[k] = v
		ev.mu.Unlock()
	}
	return v
}

type verdictKey struct {
	src, dst string
	// dstPod matters for named ports, which resolve on the server's pod.
	dstPod string
	proto  learn.Protocol
	port   uint16
}

// maxCached bounds each cache; when full it starts over.
const maxCached = 1 << 20

func (ev *Evaluator) subject(id *Identity) *subjectPolicy {
	ev.mu.Lock()
	sp, ok := ev.subjects[id.key]
	ev.mu.Unlock()
	if ok {
		return sp
	}
	sp = &subjectPolicy{}
	add := func(es []*entry) {
		for _, e := range es {
			if !e.subject.matches(id.Labels) {
				continue
			}
			d := &sp.dirs[b2i(e.ingress)]
			d.enforced = true
			if e.defaultDeny && !d.defaultDeny {
				d.defaultDeny = true
				d.defaultDenyBy = e.policy
			}
			if e.deny {
				d.deny = append(d.deny, e)
			} else {
				d.allow = append(d.allow, e)
			}
			if !slices.Contains(d.policies, e.policy) {
				d.policies = append(d.policies, e.policy)
			}
		}
	}
	// The subject's own namespace first: when nothing allows a
	// connection, the report names the first policy that put the
	// direction into default deny, and the namespace's policy is the one
	// its owners read.
	if id.Namespace != "" {
		add(ev.byNamespace[id.Namespace])
	}
	add(ev.global)
	if id.Init {
		for i := range sp.dirs {
			sp.dirs[i].enforced, sp.dirs[i].defaultDeny = true, true
		}
	}
	ev.mu.Lock()
	if len(ev.subjects) >= maxCached {
		clear(ev.subjects)
	}
	ev.subjects[id.key] = sp
	ev.mu.Unlock()
	return sp
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decide computes the verdict of subj's policy for traffic with peer,
// in the ingress or egress direction.
func (ev *Evaluator) decide(subj, peer *Identity, ingress bool, req *Request) Result {
	if !subj.Endpoint {
		return Result{Decision: None, Rule: "not-an-endpoint"}
	}
	d := &ev.subject(subj).dirs[b2i(ingress)]
	if !d.enforced {
		return Result{Decision: None, Rule: "not-enforced"}
	}
	var unresolved []string
	for _, e := range d.deny {
		if m, ok := ev.match(e, peer, req, &unresolved); ok {
			return Result{Decision: Denied, Policy: e.policy, Rule: e.where, Unresolved: unresolved, by: e, peer: m.peer, portRule: m.portRule, port: m.port}
		}
	}
	var allowedBy *entry
	var first matched
	var l7Rules []*portRule
	l7Wildcard := !d.defaultDeny
	for _, e := range d.allow {
		m, ok := ev.match(e, peer, req, &unresolved)
		if !ok {
			continue
		}
		if allowedBy == nil {
			allowedBy, first = e, m
		}
		if req.HTTP == nil && req.DNSQuery == "" {
			break // the first allow decides; L7 needs them all
		}
		if m.pr == nil || !m.pr.hasL7 {
			l7Wildcard = true
		} else {
			l7Rules = append(l7Rules, m.pr)
		}
	}
	if allowedBy != nil {
		r := Result{Decision: Allowed, Policy: allowedBy.policy, Rule: allowedBy.where, Unresolved: unresolved, by: allowedBy, peer: first.peer, portRule: first.portRule, port: first.port}
		if !l7Wildcard && (req.HTTP != nil || req.DNSQuery != "") {
			denied, unknown := l7Decide(l7Rules, req)
			if denied {
				r.Decision, r.L7 = Denied, true
			}
			if unknown {
				r.Unresolved = appendOnce(r.Unresolved, "HTTP header rules not evaluated: the request's headers were not observed")
			}
		}
		return r
	}
	// allow-localhost is added with the direction's rules: an init
	// endpoint that no rule selects gets none (computePolicyEnforcementAndRules).
	if ingress && peer.Host && d.defaultDeny && len(d.policies) > 0 {
		return Result{Decision: Allowed, Rule: "allow-localhost", Unresolved: unresolved}
	}
	if !d.defaultDeny {
		return Result{Decision: Allowed, Rule: "no-default-deny", Policy: d.policies[0], Unresolved: unresolved}
	}
	by := d.defaultDenyBy
	if by == nil && len(d.policies) > 0 {
		by = d.policies[0] // reserved:init: always default deny
	}
	return Result{Decision: Denied, Rule: "default-deny", Policy: by, Unresolved: unresolved}
}

// matched locates what matched in an entry.
type matched struct {
	pr                   *portRule // nil for an L3-only entry
	peer, portRule, port int
}

// match reports whether entry e covers the peer and port. Ports are
// checked first: they are cheaper than selectors, and a peer that cannot
// be resolved only matters on a port the rule covers.
func (ev *Evaluator) match(e *entry, peer *Identity, req *Request, unresolved *[]string) (matched, bool) {
	m := matched{peer: -1, portRule: -1, port: -1}
	if e.l3 == nil {
		return m, false
	}
	if len(e.l3) == 0 && len(e.l4) == 0 {
		return m, false // "ingress: [{}]" enforces but allows nothing
	}
	if len(e.l4) > 0 {
		found := false
		for i := range e.l4 {
			pr := &e.l4[i]
			for j, pp := range pr.ports {
				if ev.portMatches(pp, req, e, unresolved) {
					m.pr, m.portRule, m.port, found = pr, i, j, true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return m, false
		}
	}
	if len(e.l3) == 0 {
		return m, true // any peer
	}
	for i, p := range e.l3 {
		if p.unresolved != "" {
			*unresolved = appendOnce(*unresolved, e.policy.Ref()+" "+e.where+": "+p.unresolved)
			continue
		}
		if p.matches(peer) {
			m.peer = i
			return m, true
		}
	}
	return m, false
}

// portMatches reports whether a port of a rule covers the request's
// protocol and server port; named ports resolve on the server.
func (ev *Evaluator) portMatches(pp portProto, req *Request, e *entry, unresolved *[]string) bool {
	proto := req.Proto.String()
	switch pp.proto {
	case "ANY":
		if proto != "TCP" && proto != "UDP" && proto != "SCTP" {
			return false
		}
	case "ICMP":
		if req.Proto != learn.ProtoICMPv4 {
			return false
		}
	case "ICMPV6":
		if req.Proto != learn.ProtoICMPv6 {
			return false
		}
	default:
		if pp.proto != proto {
			return false
		}
	}
	if pp.allPort {
		return true
	}
	if pp.named != "" {
		port, known := ev.cluster.namedPort(req.Dst, pp.named, proto)
		if !known {
			*unresolved = appendOnce(*unresolved, fmt.Sprintf("%s %s: named port %q is not resolved (needs the cluster's Pods)", e.policy.Ref(), e.where, pp.named))
			return false
		}
		return port != 0 && port == req.Port
	}
	if pp.endPort != 0 {
		return req.Port >= pp.port && req.Port <= pp.endPort
	}
	return req.Port == pp.port
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// l7Decide checks an L7 request against the L7 rules of the port rules
// that allowed the connection: any rule allowing it is enough. A rule
// that requires headers matches when the headers were not observed
// (unknown is then set): an unknown is reported, not guessed denied.
func l7Decide(rules []*portRule, req *Request) (denied, unknown bool) {
	for _, pr := range rules {
		if req.HTTP != nil {
			if len(pr.http) == 0 {
				return false, false // DNS rules on this port do not restrict HTTP
			}
			for _, h := range pr.http {
				if h.matches(req.HTTP) {
					if len(h.headers) > 0 && req.HTTP.Headers == nil {
						return false, true
					}
					return false, false
				}
			}
		}
		if req.DNSQuery != "" {
			if len(pr.dns) == 0 {
				return false, false
			}
			q := fqdnName(req.DNSQuery)
			for _, d := range pr.dns {
				if d.re.MatchString(q) {
					return false, false
				}
			}
		}
	}
	return true, false
}

func (h *httpMatcher) matches(r *HTTPRequest) bool {
	if h.method != nil && !h.method.MatchString(r.Method) {
		return false
	}
	if h.path != nil && !h.path.MatchString(r.Path) {
		return false
	}
	if h.host != nil && !h.host.MatchString(r.Host) {
		return false
	}
	if r.Headers == nil {
		return true // not observed: the caller reports it
	}
	for _, hd := range h.headers {
		name, value, hasValue := strings.Cut(hd, ":")
		got, ok := r.Headers[strings.ToLower(strings.TrimSpace(name))]
		if !ok || (hasValue && strings.TrimSpace(value) != got) {
			return false
		}
	}
	return true
}
