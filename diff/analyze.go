package diff

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cnpgen/cnpgen/learn"
)

// Finding classes, as --fail-on names them.
const (
	ClassDenied      = "denied-but-needed"
	ClassUnused      = "allowed-but-unused"
	ClassDrift       = "drift"
	ClassAttribution = "attribution"
	ClassUnresolved  = "unresolved"
)

// Classes are all finding classes.
var Classes = []string{ClassDenied, ClassUnused, ClassDrift, ClassAttribution, ClassUnresolved}

// Report is what cnpgen diff found. Its JSON form is a stable,
// documented schema (README, "cnpgen diff --output json").
type Report struct {
	// Window is the time the observations cover.
	Window Window `json:"window"`
	// Policies and Edges count what was compared.
	Policies int `json:"policies"`
	Edges    int `json:"edges"`

	DeniedButNeeded  []DeniedFinding      `json:"denied_but_needed"`
	AllowedButUnused []UnusedFinding      `json:"allowed_but_unused"`
	Drift            []DriftFinding       `json:"drift"`
	Attribution      []AttributionFinding `json:"attribution"`
	Unresolved       []string             `json:"unresolved"`
}

// Window is a time range; zero times when nothing was observed.
type Window struct {
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

func (w Window) String() string {
	if w.First.IsZero() {
		return "no observations"
	}
	return fmt.Sprintf("%s to %s (%s)", w.First.UTC().Format(time.RFC3339), w.Last.UTC().Format(time.RFC3339), w.Last.Sub(w.First).Round(time.Second))
}

// DeniedFinding is an observed edge the policies would deny.
type DeniedFinding struct {
	Edge  string    `json:"edge"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Port  string    `json:"port"`
	Flows uint64    `json:"flows"`
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
	// Observed is "allowed" when Hubble saw the edge forwarded (or
	// audited), "dropped" when it only saw policy drops.
	Observed string            `json:"observed"`
	Verdicts map[string]uint64 `json:"verdicts,omitempty"`
	// Side is where it is denied: egress, ingress or both.
	Side string `json:"denied_at"`
	// Policy and Rule decided it ("default-deny" when nothing allows it);
	// Source is the policy's file:line.
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule"`
	Source string `json:"source,omitempty"`
	// DeniedBy lists each denying end (Policy, Rule and Source repeat
	// the first).
	DeniedBy []Decider `json:"denied_by,omitempty"`
	// Requests lists L7 requests denied while the connection is allowed.
	Requests []string `json:"l7_requests,omitempty"`
	// Fix is the rule cnpgen synth writes for the edge.
	Fix string `json:"fix,omitempty"`
}

// Decider is the policy and rule that decided one end.
type Decider struct {
	Side   string `json:"side"`
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule"`
	Source string `json:"source,omitempty"`
}

// UnusedFinding is a rule, or a peer or port of a rule, that no
// observation used, or a policy that selects no observed endpoint.
type UnusedFinding struct {
	// Kind is "policy" (selects no observed endpoint), "rule", "peer" or
	// "port".
	Kind   string `json:"kind"`
	Policy string `json:"policy"`
	Source string `json:"source"`
	Rule   string `json:"rule,omitempty"`
	Peer   string `json:"peer,omitempty"`
	Port   string `json:"port,omitempty"`
	// HubbleUses counts edges Hubble attributed to the policy.
	HubbleUses int `json:"hubble_uses,omitempty"`
}

// DriftFinding is a connection whose verdict differs between two policy
// sets.
type DriftFinding struct {
	Edge string `json:"edge"`
	// Observed says the connection was observed (else it comes from
	// --universe).
	Observed bool `json:"observed"`
	// Policies is the verdict of --policies, Against that of --against.
	Policies string `json:"policies"`
	Against  string `json:"against"`
}

// AttributionFinding is an edge where Hubble's policy attribution and
// the evaluator disagree.
type AttributionFinding struct {
	Edge      string `json:"edge"`
	Direction string `json:"direction"`
	Hubble    string `json:"hubble"`
	Evaluator string `json:"evaluator"`
}

// Count returns the number of findings in a class.
func (r *Report) Count(class string) int {
	switch class {
	case ClassDenied:
		return len(r.DeniedButNeeded)
	case ClassUnused:
		return len(r.AllowedButUnused)
	case ClassDrift:
		return len(r.Drift)
	case ClassAttribution:
		return len(r.Attribution)
	case ClassUnresolved:
		return len(r.Unresolved)
	}
	return 0
}

// AnalyzeOptions control [Analyze].
type AnalyzeOptions struct {
	// Against is a second policy set: connections whose verdict differs
	// are drift.
	Against *Evaluator
	// Universe extends drift to every pair of observed workloads and
	// every port observed on the server.
	Universe bool
	// Fix writes the rule that would allow a denied edge.
	Fix func(req *Request, side string) string
}

type use struct {
	entries map[*entry]bool
	peers   map[[2]any]bool // {entry, peer index}
	ports   map[[3]any]bool // {entry, port rule, port}
}

// Analyze compares the policies of ev with the edges of g.
func Analyze(ev *Evaluator, g *learn.Graph, o AnalyzeOptions) *Report {
	first, last := g.Window()
	edges := g.Edges()
	r := &Report{Window: Window{first, last}, Policies: len(ev.policies), Edges: len(edges)}
	gi := NewGraphIdentities(g, ev.clusterName)
	u := use{entries: map[*entry]bool{}, peers: map[[2]any]bool{}, ports: map[[3]any]bool{}}
	hubbleUses := map[string]int{}
	unresolved := map[string]bool{}
	record := func(res Result) {
		for _, s := range res.Unresolved {
			unresolved[s] = true
		}
		if res.by == nil || res.Decision != Allowed {
			return
		}
		u.entries[res.by] = true
		u.peers[[2]any{res.by, res.peer}] = true
		u.ports[[3]any{res.by, res.portRule, res.port}] = true
	}
	var observed []*Identity
	seenID := map[*Identity]bool{}
	for _, e := range edges {
		req := gi.EdgeRequest(e)
		if req == nil {
			continue
		}
		for _, id := range []*Identity{req.Src, req.Dst} {
			if id.Endpoint && !seenID[id] {
				seenID[id] = true
				observed = append(observed, id)
			}
		}
		v := ev.Evaluate(req)
		record(v.Egress)
		record(v.Ingress)
		for ref := range e.EgressAllowedBy {
			hubbleUses[ref]++
		}
		for ref := range e.IngressAllowedBy {
			hubbleUses[ref]++
		}
		r.Attribution = append(r.Attribution, attribution(g, e, v)...)
		if o.Against != nil {
			if w := o.Against.Evaluate(req); w.Allowed != v.Allowed {
				r.Drift = append(r.Drift, DriftFinding{Edge: EdgeName(g, e), Observed: true, Policies: verdictText(v), Against: verdictText(w)})
			}
		}
		needed, observedAs := neededEdge(e)
		if !needed {
			continue
		}
		if !v.Allowed {
			r.DeniedButNeeded = append(r.DeniedButNeeded, deniedFinding(g, e, v, req, observedAs, o.Fix))
			continue
		}
		// The connection is allowed; are its L7 requests?
		if reqs := deniedRequests(ev, e, req); len(reqs) > 0 {
			f := deniedFinding(g, e, v, req, observedAs, nil)
			f.Requests = reqs
			f.Side, f.Policy, f.Rule, f.Source = "l7", "", "l7", ""
			r.DeniedButNeeded = append(r.DeniedButNeeded, f)
		}
	}
	if o.Against != nil && o.Universe {
		r.Drift = append(r.Drift, universeDrift(ev, o.Against, g, gi)...)
	}
	r.AllowedButUnused = unused(ev, u, observed, hubbleUses)
	r.Unresolved = slices.Sorted(maps.Keys(unresolved))
	return r
}

// neededEdge says whether an edge is traffic the cluster needs: seen
// forwarded, redirected to the proxy or audited, or dropped by policy
// (someone tried; a policy stopped it).
func neededEdge(e *learn.Edge) (bool, string) {
	allowed := e.Verdicts["FORWARDED"] + e.Verdicts["REDIRECTED"] + e.Verdicts["AUDIT"]
	if allowed > 0 {
		return true, "allowed"
	}
	if e.Verdicts["DROPPED:POLICY_DENIED"]+e.Verdicts["DROPPED:POLICY_DENY"] > 0 {
		return true, "dropped"
	}
	return false, ""
}

func deniedFinding(g *learn.Graph, e *learn.Edge, v Verdict, req *Request, observedAs string, fix func(*Request, string) string) DeniedFinding {
	f := DeniedFinding{
		Edge: EdgeName(g, e), From: peerName(g.Peer(e.From)), To: peerName(g.Peer(e.To)), Port: PortName(e.Proto, e.Port),
		Flows: e.Flows, First: e.First, Last: e.Last, Observed: observedAs, Verdicts: maps.Clone(e.Verdicts),
	}
	for _, side := range []struct {
		name string
		res  Result
	}{{"egress", v.Egress}, {"ingress", v.Ingress}} {
		if side.res.Decision != Denied {
			continue
		}
		d := Decider{Side: side.name, Rule: side.res.Rule}
		if p := side.res.Policy; p != nil {
			d.Policy, d.Source = p.Ref(), p.Source
			if side.res.by != nil {
				d.Source = p.RuleSource(side.res.Rule)
			}
		}
		f.DeniedBy = append(f.DeniedBy, d)
	}
	if len(f.DeniedBy) == 2 {
		f.Side = "both"
	} else if len(f.DeniedBy) == 1 {
		f.Side = f.DeniedBy[0].Side
	}
	if len(f.DeniedBy) > 0 {
		f.Policy, f.Rule, f.Source = f.DeniedBy[0].Policy, f.DeniedBy[0].Rule, f.DeniedBy[0].Source
	}
	if fix != nil {
		var parts []string
		if v.Egress.Decision == Denied {
			if s := fix(req, "egress"); s != "" {
				parts = append(parts, s)
			}
		}
		if v.Ingress.Decision == Denied {
			if s := fix(req, "ingress"); s != "" {
				parts = append(parts, s)
			}
		}
		f.Fix = strings.Join(parts, "")
	}
	return f
}

// deniedRequests evaluates the L7 requests observed on an edge.
func deniedRequests(ev *Evaluator, e *learn.Edge, req *Request) []string {
	var out []string
	for _, h := range slices.SortedFunc(maps.Keys(e.HTTP), func(a, b learn.HTTPRequest) int {
		return cmp.Or(strings.Compare(a.Method, b.Method), strings.Compare(a.Path, b.Path), strings.Compare(a.Host, b.Host))
	}) {
		r := *req
		r.HTTP = &HTTPRequest{Method: h.Method, Path: h.Path, Host: h.Host}
		if !ev.Evaluate(&r).Allowed {
			out = append(out, h.Method+" "+h.Host+h.Path)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(e.DNS)) {
		r := *req
		r.DNSQuery = n
		if !ev.Evaluate(&r).Allowed {
			out = append(out, "DNS "+n)
		}
	}
	return out
}

func verdictText(v Verdict) string {
	if v.Allowed {
		by := v.Ingress
		if by.Decision != Allowed || by.Policy == nil {
			by = v.Egress
		}
		if by.Policy != nil {
			return "allowed (" + by.Ref() + ")"
		}
		return "allowed"
	}
	by := v.Egress
	if by.Decision != Denied {
		by = v.Ingress
	}
	return "denied (" + by.Ref() + ")"
}

// attribution compares Hubble's *_allowed_by / *_denied_by with the
// evaluator: a policy Hubble says allowed an edge the evaluator denies,
// or one it says denied an edge the evaluator allows.
func attribution(g *learn.Graph, e *learn.Edge, v Verdict) []AttributionFinding {
	var out []AttributionFinding
	check := func(dir string, allowedBy, deniedBy map[string]struct{}, res Result) {
		if len(allowedBy) > 0 && res.Decision == Denied {
			out = append(out, AttributionFinding{Edge: EdgeName(g, e), Direction: dir, Hubble: "allowed by " + strings.Join(slices.Sorted(maps.Keys(allowedBy)), ", "), Evaluator: "denied (" + res.Ref() + ")"})
		}
		if len(deniedBy) > 0 && res.Decision == Allowed {
			out = append(out, AttributionFinding{Edge: EdgeName(g, e), Direction: dir, Hubble: "denied by " + strings.Join(slices.Sorted(maps.Keys(deniedBy)), ", "), Evaluator: "allowed (" + res.Ref() + ")"})
		}
	}
	check("egress", e.EgressAllowedBy, e.EgressDeniedBy, v.Egress)
	check("ingress", e.IngressAllowedBy, e.IngressDeniedBy, v.Ingress)
	return out
}

// hubbleRef is how Hubble names a policy: kind:namespace/name.
func hubbleRef(p *Policy) string {
	if p.Kind == KindCCNP {
		return p.Kind + ":" + p.Name
	}
	return p.Kind + ":" + p.Namespace + "/" + p.Name
}

func unused(ev *Evaluator, u use, observed []*Identity, hubbleUses map[string]int) []UnusedFinding {
	var out []UnusedFinding
	selects := map[*Policy]bool{}
	for _, id := range observed {
		sp := ev.subject(id)
		for _, d := range sp.dirs {
			for _, p := range d.policies {
				selects[p] = true
			}
		}
	}
	seenPolicy := map[*Policy]bool{}
	for _, e := range ev.entries {
		p := e.policy
		if !selects[p] {
			if !seenPolicy[p] {
				seenPolicy[p] = true
				out = append(out, UnusedFinding{Kind: "policy", Policy: p.Ref(), Source: p.Source, HubbleUses: hubbleUses[hubbleRef(p)]})
			}
			continue
		}
		if e.deny || e.l3 == nil || (len(e.l3) == 0 && len(e.l4) == 0) {
			continue // denies, and items that allow nothing
		}
		if !u.entries[e] {
			out = append(out, UnusedFinding{Kind: "rule", Policy: p.Ref(), Source: p.RuleSource(e.where), Rule: e.where, Peer: peersText(e), Port: portsText(e), HubbleUses: hubbleUses[hubbleRef(p)]})
			continue
		}
		if len(e.l3) > 1 {
			for i, ps := range e.l3 {
				if !u.peers[[2]any{e, i}] {
					out = append(out, UnusedFinding{Kind: "peer", Policy: p.Ref(), Source: p.RuleSource(e.where), Rule: e.where, Peer: ps.text})
				}
			}
		}
		n := 0
		for _, pr := range e.l4 {
			n += len(pr.ports)
		}
		if n > 1 {
			for i, pr := range e.l4 {
				for j, pp := range pr.ports {
					if !u.ports[[3]any{e, i, j}] {
						out = append(out, UnusedFinding{Kind: "port", Policy: p.Ref(), Source: p.RuleSource(e.where), Rule: e.where, Port: pp.String()})
					}
				}
			}
		}
	}
	return out
}

func peersText(e *entry) string {
	if len(e.l3) == 0 {
		return "any"
	}
	var s []string
	for _, p := range e.l3 {
		s = append(s, p.text)
	}
	return strings.Join(s, "; ")
}

func portsText(e *entry) string {
	if len(e.l4) == 0 {
		return "any"
	}
	var s []string
	for _, pr := range e.l4 {
		for _, pp := range pr.ports {
			s = append(s, pp.String())
		}
	}
	return strings.Join(s, ", ")
}

func (pp portProto) String() string {
	var port string
	switch {
	case pp.allPort:
		port = "*"
	case pp.named != "":
		port = pp.named
	case pp.endPort != 0:
		port = fmt.Sprintf("%d-%d", pp.port, pp.endPort)
	default:
		port = fmt.Sprint(pp.port)
	}
	if pp.proto == "ICMP" || pp.proto == "ICMPV6" {
		return pp.proto + " type " + port
	}
	return port + "/" + pp.proto
}

// universeLimit bounds --universe: pairs beyond it are not compared.
const universeLimit = 2_000_000

// universeDrift compares every pair of observed workloads on every port
// observed on the server, except the observed edges themselves.
func universeDrift(a, b *Evaluator, g *learn.Graph, gi *GraphIdentities) []DriftFinding {
	type port struct {
		proto learn.Protocol
		port  uint16
	}
	serverPorts := map[string][]port{}
	observed := map[learn.EdgeKey]bool{}
	for _, e := range g.Edges() {
		observed[e.EdgeKey] = true
		if p := g.Peer(e.To); p != nil && p.Kind == learn.PeerWorkload {
			pp := port{e.Proto, e.Port}
			if !slices.Contains(serverPorts[e.To], pp) {
				serverPorts[e.To] = append(serverPorts[e.To], pp)
			}
		}
	}
	var workloads []*learn.Peer
	for _, p := range g.Peers() {
		if p.Kind == learn.PeerWorkload {
			workloads = append(workloads, p)
		}
	}
	var out []DriftFinding
	n := 0
	for _, from := range workloads {
		for _, to := range workloads {
			for _, pp := range serverPorts[to.Key()] {
				k := learn.EdgeKey{From: from.Key(), To: to.Key(), Proto: pp.proto, Port: pp.port}
				if observed[k] {
					continue
				}
				if n++; n > universeLimit {
					return out
				}
				req := &Request{Src: gi.Peer(from), Dst: gi.Peer(to), Proto: pp.proto, Port: pp.port}
				va, vb := a.Evaluate(req), b.Evaluate(req)
				if va.Allowed != vb.Allowed {
					out = append(out, DriftFinding{Edge: peerName(from) + " → " + peerName(to) + " " + PortName(pp.proto, pp.port), Policies: verdictText(va), Against: verdictText(vb)})
				}
			}
		}
	}
	return out
}
