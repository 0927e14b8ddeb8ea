package synth

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/cilium/pkg/policy/api"

	"github.com/cnpgen/cnpgen/internal/crdschema"
	"github.com/cnpgen/cnpgen/learn"
)

// Options control synthesis.
type Options struct {
	// Namespaces limits policies to these namespaces; ExcludeNamespaces
	// and Workloads (namespace/name) narrow further.
	Namespaces, ExcludeNamespaces, Workloads []string
	// IncludeSystem writes policies for kube-system and Cilium's own
	// namespaces too.
	IncludeSystem bool
	// SelectorLabels is the preference list of label keys for selectors
	// (default app.kubernetes.io/name, app, k8s-app, name).
	SelectorLabels []string
	// MinFlows and MinAge are the evidence an edge needs to become a rule.
	MinFlows uint64
	MinAge   time.Duration
	// IncludeDenied allows edges seen only as dropped by policy.
	IncludeDenied bool
	// Audit writes enableDefaultDeny false in both directions.
	Audit bool
	// DNSAll allows any DNS name through the DNS proxy (matchPattern "*").
	DNSAll bool
	// Version is recorded in the annotations.
	Version string
	// CIDRPrefix widens IPv4 addresses without a DNS name to this prefix
	// length (0: /32, exactly the address).
	CIDRPrefix int
	// FQDNOnly makes no rule for external addresses without a DNS name.
	FQDNOnly bool
	// PortRanges folds runs of three or more consecutive ports into
	// endPort ranges.
	PortRanges bool
	// L7HTTP writes HTTP rules (method and path) where requests were
	// observed; GeneralizePaths turns numeric and uuid path segments into
	// patterns. L7DNS writes DNS rules on every DNS server rule.
	L7HTTP, GeneralizePaths, L7DNS bool
	// Cluster writes CiliumClusterwideNetworkPolicies instead.
	Cluster bool
	// GeneralizeFQDNs allows *.parent (matchPattern) where a workload used
	// two or more names under one parent domain.
	GeneralizeFQDNs bool
}

// DefaultSelectorLabels is the default preference of selector labels.
var DefaultSelectorLabels = []string{"app.kubernetes.io/name", "app", "k8s-app", "name"}

// Finding is a line of the report: an edge or workload that did not
// become what one might expect, and why.
type Finding struct {
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
}

// Result is the synthesised policies, sorted by namespace and name, and
// the report.
type Result struct {
	Policies []*Policy
	Report   []Finding
}

// ManagedByLabel marks the policies cnpgen writes and owns.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// volatile are label keys that name a version or a sidecar rather than a
// workload; they are used in a selector only when nothing else tells two
// workloads apart.
var volatile = regexp.MustCompile(`^(version|.*/version|security\.istio\.io/.*|service\.istio\.io/.*|sidecar\..*|istio\.io/rev|io\.cilium\.k8s\.policy\..*|.*pod-template-hash|controller-revision-hash)$`)

func systemNamespace(ns string) bool { return ns == "kube-system" || strings.HasPrefix(ns, "cilium") }

type workload struct {
	peer     *learn.Peer
	selector map[string]string // plain keys
	ingress  accs
	egress   accs
	fqdn     map[string]map[string]bool // name -> ports ("443/TCP")
	denied   []string                   // edges allowed although only seen dropped
	flows    uint64
	first    time.Time
	last     time.Time
}

// ruleAcc accumulates the ports of one peer.
type ruleAcc struct {
	peer  peerRef
	ports map[string]bool // "8080/TCP"
	icmp  map[string]bool // "IPv4/8"
	dns   bool            // this is a DNS server the workload uses
	names map[string]bool // DNS names queried of it
	// http holds, per port, the requests observed; a port whose requests
	// are not all known is in noHTTP.
	http   map[string]map[HTTPRule]bool
	noHTTP map[string]bool
}

type peerRef struct {
	sel     map[string]string
	entity  string
	cidr    string
	sortKey string
}

// Synthesize writes a policy for every selected workload of g.
func Synthesize(g *learn.Graph, o Options) (*Result, error) {
	if len(o.SelectorLabels) == 0 {
		o.SelectorLabels = DefaultSelectorLabels
	}
	res := &Result{}
	report := func(subject, format string, args ...any) {
		res.Report = append(res.Report, Finding{subject, fmt.Sprintf(format, args...)})
	}

	// Workloads and their selectors.
	wls := map[string]*workload{}
	var labelled []*learn.Peer
	for _, p := range g.Peers() {
		if p.Kind == learn.PeerWorkload && len(p.Labels) > 0 {
			labelled = append(labelled, p)
		}
	}
	byNS := map[[2]string][]*learn.Peer{}
	for _, p := range labelled {
		k := [2]string{p.Cluster, p.Namespace}
		byNS[k] = append(byNS[k], p)
	}
	for _, p := range labelled {
		sel, why := chooseSelector(p, byNS[[2]string{p.Cluster, p.Namespace}], o.SelectorLabels)
		if why != "" {
			report(p.Name(), "%s", why)
		}
		wls[p.Key()] = &workload{peer: p, selector: sel, ingress: accs{}, egress: accs{}, fqdn: map[string]map[string]bool{}}
	}
	// Unlabelled peers (Hubble named the pod but not its identity) stand
	// for the labelled peer of the same namespace and workload, if unique.
	alias := map[string]*workload{}
	for _, p := range g.Peers() {
		if p.Kind != learn.PeerWorkload || len(p.Labels) > 0 {
			continue
		}
		var match []*workload
		for _, w := range wls {
			if w.peer.Namespace == p.Namespace && len(p.Workloads) > 0 && slices.ContainsFunc(w.peer.Workloads, func(x learn.Workload) bool { return x.Name == p.Workloads[0].Name }) {
				match = append(match, w)
			}
		}
		if len(match) == 1 {
			alias[p.Key()] = match[0]
		} else {
			report(p.Name(), "identity labels unknown (Hubble named the pod only); its edges make no rules")
		}
	}
	lookup := func(key string) *workload {
		if w := wls[key]; w != nil {
			return w
		}
		return alias[key]
	}
	selected := func(w *workload) bool {
		ns := w.peer.Namespace
		switch {
		case len(o.Namespaces) > 0 && !slices.Contains(o.Namespaces, ns):
			return false
		case slices.Contains(o.ExcludeNamespaces, ns):
			return false
		case len(o.Workloads) > 0 && !slices.ContainsFunc(w.peer.Workloads, func(x learn.Workload) bool { return slices.Contains(o.Workloads, ns+"/"+x.Name) }):
			return false
		case systemNamespace(ns) && !o.IncludeSystem && !slices.Contains(o.Namespaces, ns):
			return false
		}
		return true
	}

	for _, e := range g.Edges() {
		from, to := g.Peer(e.From), g.Peer(e.To)
		subject := fmt.Sprintf("%s -> %s %s/%d", from.Name(), to.Name(), e.Proto, e.Port)
		if !allowedByEvidence(e, o, subject, report) {
			continue
		}
		cw, sw := lookup(e.From), lookup(e.To)
		port, icmp := portOf(e)
		denied := onlyDenied(e)
		if cw != nil && selected(cw) {
			cw.observe(e, denied, subject)
			switch {
			case to.Kind == learn.PeerExternal && !icmp && len(g.NamesFor(e.From, to.IP)) > 0:
				// ICMP cannot go with toPorts; pings to a named address
				// are allowed by address below.
				for _, n := range g.NamesFor(e.From, to.IP) {
					if cw.fqdn[n] == nil {
						cw.fqdn[n] = map[string]bool{}
					}
					cw.fqdn[n][port] = true
				}
			case to.Kind == learn.PeerExternal && o.FQDNOnly:
				report(subject, "external address without a DNS name (--fqdn-only)")
			default:
				ref, ok := peerOf(to, sw, cw.peer, o)
				if !ok {
					report(subject, "the server is not a peer policy can name")
					break
				}
				acc := cw.egress.add(ref)
				acc.addPort(port, icmp)
				acc.addHTTP(port, e, o.GeneralizePaths)
				if e.Port == 53 && (e.Proto == learn.ProtoUDP || e.Proto == learn.ProtoTCP) {
					// DNS falls back to TCP for long answers: allow both
					// even if only one was seen.
					acc.ports["53/UDP"], acc.ports["53/TCP"] = true, true
					acc.dns = true
					for n := range e.DNS {
						acc.names[n] = true
					}
				}
			}
		}
		if sw != nil && selected(sw) {
			sw.observe(e, denied, subject)
			ref, ok := peerOf(from, cw, sw.peer, o)
			if !ok {
				report(subject, "the client is not a peer policy can name")
				continue
			}
			acc := sw.ingress.add(ref)
			acc.addPort(port, icmp)
			if e.Port == 53 && (e.Proto == learn.ProtoUDP || e.Proto == learn.ProtoTCP) {
				acc.ports["53/UDP"], acc.ports["53/TCP"] = true, true
			}
			acc.addHTTP(port, e, o.GeneralizePaths)
		}
	}

	validator, err := crdschema.Cilium()
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, w := range slices.SortedFunc(maps.Values(wls), func(a, b *workload) int { return strings.Compare(a.peer.Key(), b.peer.Key()) }) {
		if !selected(w) {
			continue
		}
		p := w.build(o, report)
		base := p.Metadata.Namespace + "/" + p.Metadata.Name
		if other, dup := names[base]; dup {
			p.Metadata.Name = dnsName(p.Metadata.Name + "-" + shortHash(w.peer.Key()))
			report(w.peer.Name(), "policy name taken by %s; named %s", other, p.Metadata.Name)
		}
		names[p.Metadata.Namespace+"/"+p.Metadata.Name] = w.peer.Name()
		res.Policies = append(res.Policies, p)
	}
	if err := validateAll(res.Policies, validator); err != nil {
		return nil, err
	}
	slices.SortFunc(res.Policies, func(a, b *Policy) int {
		return cmp.Or(strings.Compare(a.Metadata.Namespace, b.Metadata.Namespace), strings.Compare(a.Metadata.Name, b.Metadata.Name))
	})
	slices.SortFunc(res.Report, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), strings.Compare(a.Reason, b.Reason))
	})
	return res, nil
}

// onlyDenied reports whether an edge was only ever seen dropped by policy.
func onlyDenied(e *learn.Edge) bool {
	for v := range e.Verdicts {
		if !strings.HasPrefix(v, "DROPPED:") {
			return false
		}
	}
	return true
}

func allowedByEvidence(e *learn.Edge, o Options, subject string, report func(string, string, ...any)) bool {
	allowed := !onlyDenied(e)
	switch {
	case !allowed && !o.IncludeDenied:
		report(subject, "only seen dropped by policy (use --include-denied to allow it)")
		return false
	case e.Flows < o.MinFlows:
		report(subject, "seen in %d flows, fewer than --min-flows %d", e.Flows, o.MinFlows)
		return false
	case o.MinAge > 0 && e.Last.Sub(e.First) < o.MinAge:
		report(subject, "seen over %s, less than --min-age %s", e.Last.Sub(e.First).Round(time.Second), o.MinAge)
		return false
	}
	if e.Port >= 32768 && !e.Proto.IsICMP() {
		report(subject, "allowed, but the port is in the ephemeral range: check that the server really listens on it")
	}
	if !allowed {
		report(subject, "allowed although only seen dropped by policy (--include-denied)")
	}
	return true
}

func (w *workload) observe(e *learn.Edge, denied bool, subject string) {
	if denied {
		w.denied = append(w.denied, subject)
	}
	w.flows += e.Flows
	if !e.First.IsZero() && (w.first.IsZero() || e.First.Before(w.first)) {
		w.first = e.First
	}
	if e.Last.After(w.last) {
		w.last = e.Last
	}
}

type accs map[string]*ruleAcc

func (m accs) add(ref peerRef) *ruleAcc {
	a := m[ref.sortKey]
	if a == nil {
		a = &ruleAcc{peer: ref, ports: map[string]bool{}, icmp: map[string]bool{}, names: map[string]bool{}, http: map[string]map[HTTPRule]bool{}, noHTTP: map[string]bool{}}
		m[ref.sortKey] = a
	}
	return a
}

func (a *ruleAcc) addPort(port string, icmp bool) {
	if icmp {
		a.icmp[port] = true
	} else {
		a.ports[port] = true
	}
}

// portOf renders an edge's port as "8080/TCP", or its ICMP type as
// "IPv4/8".
func portOf(e *learn.Edge) (string, bool) {
	switch e.Proto {
	case learn.ProtoICMPv4:
		return "IPv4/" + strconv.Itoa(int(e.Port)), true
	case learn.ProtoICMPv6:
		return "IPv6/" + strconv.Itoa(int(e.Port)), true
	}
	return strconv.Itoa(int(e.Port)) + "/" + e.Proto.String(), false
}

// peerOf names a peer p (the workload w, if it is one) in a rule of
// self's policy.
func peerOf(p *learn.Peer, w *workload, self *learn.Peer, o Options) (peerRef, bool) {
	switch p.Kind {
	case learn.PeerWorkload:
		if w == nil {
			return peerRef{}, false
		}
		sel := maps.Clone(w.selector)
		if w.peer.Namespace != self.Namespace || o.Cluster {
			sel["k8s:io.kubernetes.pod.namespace"] = w.peer.Namespace
		}
		if w.peer.Cluster != "" && self.Cluster != "" && w.peer.Cluster != self.Cluster {
			// ClusterMesh: a peer in another cluster.
			sel["k8s:io.cilium.k8s.policy.cluster"] = w.peer.Cluster
		}
		return peerRef{sel: sel, sortKey: "0 " + selectorString(sel)}, true
	case learn.PeerEntity:
		switch p.Entity {
		case "host", "remote-node", "kube-apiserver", "health", "ingress", "world", "unmanaged", "init":
			return peerRef{entity: p.Entity, sortKey: "1 " + p.Entity}, true
		case "world-ipv4", "world-ipv6":
			return peerRef{entity: "world", sortKey: "1 world"}, true
		}
		return peerRef{}, false
	case learn.PeerExternal:
		bits := 32
		if p.IP.Is6() {
			bits = 128
		} else if o.CIDRPrefix > 0 && o.CIDRPrefix < 32 {
			bits = o.CIDRPrefix
		}
		cidr := netip.PrefixFrom(p.IP, bits).Masked().String()
		return peerRef{cidr: cidr, sortKey: "2 " + cidr}, true
	}
	return peerRef{}, false
}

func selectorString(sel map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sel)) {
		parts = append(parts, k+"="+sel[k])
	}
	return strings.Join(parts, ",")
}

// chooseSelector picks the labels a person would select p by: the first
// preferred label present, then more until no other observed workload in
// the namespace (all) matches.
func chooseSelector(p *learn.Peer, all []*learn.Peer, prefer []string) (map[string]string, string) {
	plain := map[string]string{}
	for _, l := range p.Labels {
		src, rest, _ := strings.Cut(l, ":")
		if src != "k8s" {
			continue
		}
		k, v, _ := strings.Cut(rest, "=")
		plain[k] = v
	}
	var order []string
	for _, k := range prefer {
		if _, ok := plain[k]; ok && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range []string{"app.kubernetes.io/instance", "app.kubernetes.io/component"} {
		if _, ok := plain[k]; ok && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	var rest, last []string
	for _, k := range slices.Sorted(maps.Keys(plain)) {
		switch {
		case slices.Contains(order, k):
		case volatile.MatchString(k):
			if !strings.HasPrefix(k, "io.cilium.k8s.policy.") {
				last = append(last, k)
			}
		default:
			rest = append(rest, k)
		}
	}
	order = append(append(order, rest...), last...)
	others := func(sel map[string]string) []string {
		var out []string
		for _, o := range all {
			if o.Key() == p.Key() || o.Namespace != p.Namespace || o.Cluster != p.Cluster {
				continue
			}
			if selects(sel, o) {
				out = append(out, o.Name())
			}
		}
		return out
	}
	// Start from the preferred label (or, without one, every stable
	// label), then add a label only where it tells more workloads apart.
	sel := map[string]string{}
	if len(order) > 0 && slices.Contains(prefer, order[0]) {
		sel[order[0]] = plain[order[0]]
	} else {
		for _, k := range rest {
			sel[k] = plain[k]
		}
	}
	if len(sel) == 0 && len(order) > 0 {
		sel[order[0]] = plain[order[0]]
	}
	for _, k := range order {
		n := len(others(sel))
		if n == 0 {
			break
		}
		if _, have := sel[k]; have {
			continue
		}
		sel[k] = plain[k]
		if len(others(sel)) == n {
			delete(sel, k)
		}
	}
	why := ""
	if len(sel) > 1 {
		why = fmt.Sprintf("selector needs %s to tell it apart from other workloads", selectorString(sel))
	}
	if o := others(sel); len(o) > 0 {
		why = fmt.Sprintf("no label tells it apart from %s; their policies select each other's pods", strings.Join(o, ", "))
	}
	return sel, why
}

func selects(sel map[string]string, p *learn.Peer) bool {
	for k, v := range sel {
		if got, ok := p.Label("k8s:" + k); !ok || got != v {
			return false
		}
	}
	return true
}

// build writes the workload's policy.
func (w *workload) build(o Options, report func(string, string, ...any)) *Policy {
	name := w.peer.Name()
	_, wlName, _ := strings.Cut(name, "/")
	p := &Policy{
		APIVersion: "cilium.io/v2",
		Kind:       "CiliumNetworkPolicy",
		Metadata: ObjectMeta{
			Name:      dnsName(wlName),
			Namespace: w.peer.Namespace,
			Labels:    map[string]string{ManagedByLabel: "cnpgen"},
			Annotations: map[string]string{
				"cnpgen.io/workload": name,
				"cnpgen.io/flows":    strconv.FormatUint(w.flows, 10),
			},
		},
		Spec: Spec{EndpointSelector: Selector{MatchLabels: w.selector}},
	}
	if o.Version != "" {
		p.Metadata.Annotations["cnpgen.io/version"] = o.Version
	}
	if len(w.denied) > 0 {
		p.Metadata.Annotations["cnpgen.io/allows-denied"] = strings.Join(w.denied, "; ")
	}
	if !w.first.IsZero() {
		p.Metadata.Annotations["cnpgen.io/learned-window"] = w.first.UTC().Format(time.RFC3339) + "/" + w.last.UTC().Format(time.RFC3339)
	}
	if o.Cluster {
		p.Kind = "CiliumClusterwideNetworkPolicy"
		p.Metadata.Name = dnsName(w.peer.Namespace + "-" + wlName)
		p.Metadata.Namespace = ""
		sel := maps.Clone(w.selector)
		sel["k8s:io.kubernetes.pod.namespace"] = w.peer.Namespace
		p.Spec.EndpointSelector = Selector{MatchLabels: sel}
	}
	p.Spec.Description = "cnpgen: default deny for " + name + ", allowing the paths observed"
	if o.Audit {
		f := false
		p.Spec.EnableDefaultDeny = &DefaultDeny{Ingress: &f, Egress: &f}
		p.Spec.Description += " (audit mode: nothing is dropped)"
	}

	// DNS: FQDN rules only work if lookups go through the DNS proxy.
	var fqdnNames []string
	for n := range w.fqdn {
		fqdnNames = append(fqdnNames, n)
	}
	slices.Sort(fqdnNames)
	if len(fqdnNames) > 0 {
		var dnsServers []*ruleAcc
		for _, a := range w.egress {
			if a.dns {
				dnsServers = append(dnsServers, a)
			}
		}
		if len(dnsServers) == 0 {
			a := w.egress.add(peerRef{sel: map[string]string{"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}, sortKey: "0 k8s-app=kube-dns,k8s:io.kubernetes.pod.namespace=kube-system"})
			a.ports["53/UDP"], a.ports["53/TCP"], a.dns = true, true, true
			dnsServers = append(dnsServers, a)
			report(name, "no DNS lookups observed; allowing kube-dns on 53 so its FQDN rules can work")
		}
		for _, a := range dnsServers {
			for _, n := range fqdnNames {
				a.names[n] = true
			}
		}
	}

	for _, k := range slices.Sorted(maps.Keys(w.ingress)) {
		a := w.ingress[k]
		r := IngressRule{}
		switch {
		case a.peer.sel != nil:
			r.FromEndpoints = []Selector{{MatchLabels: a.peer.sel}}
		case a.peer.entity != "":
			r.FromEntities = []string{a.peer.entity}
		default:
			r.FromCIDR = []string{a.peer.cidr}
		}
		ports, icmps := a.rendered(false, o)
		if len(ports) > 0 {
			p.Spec.Ingress = append(p.Spec.Ingress, IngressRule{FromEndpoints: r.FromEndpoints, FromEntities: r.FromEntities, FromCIDR: r.FromCIDR, ToPorts: ports})
		}
		if len(icmps) > 0 {
			p.Spec.Ingress = append(p.Spec.Ingress, IngressRule{FromEndpoints: r.FromEndpoints, FromEntities: r.FromEntities, FromCIDR: r.FromCIDR, ICMPs: icmps})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.egress)) {
		a := w.egress[k]
		r := EgressRule{}
		switch {
		case a.peer.sel != nil:
			r.ToEndpoints = []Selector{{MatchLabels: a.peer.sel}}
		case a.peer.entity != "":
			r.ToEntities = []string{a.peer.entity}
		default:
			r.ToCIDR = []string{a.peer.cidr}
		}
		ports, icmps := a.rendered(len(fqdnNames) > 0, o)
		if len(ports) > 0 {
			p.Spec.Egress = append(p.Spec.Egress, EgressRule{ToEndpoints: r.ToEndpoints, ToEntities: r.ToEntities, ToCIDR: r.ToCIDR, ToPorts: ports})
		}
		if len(icmps) > 0 {
			p.Spec.Egress = append(p.Spec.Egress, EgressRule{ToEndpoints: r.ToEndpoints, ToEntities: r.ToEntities, ToCIDR: r.ToCIDR, ICMPs: icmps})
		}
	}
	// FQDNs grouped by the ports they were used on.
	byPorts := map[string][]string{}
	for _, n := range fqdnNames {
		k := strings.Join(slices.Sorted(maps.Keys(w.fqdn[n])), ",")
		byPorts[k] = append(byPorts[k], n)
	}
	for _, k := range slices.Sorted(maps.Keys(byPorts)) {
		r := EgressRule{ToPorts: []PortRule{{Ports: renderPorts(strings.Split(k, ","), o.PortRanges)}}}
		r.ToFQDNs = fqdnSelectors(byPorts[k], o.GeneralizeFQDNs)
		p.Spec.Egress = append(p.Spec.Egress, r)
	}
	// An empty section would leave that direction unenforced; an empty
	// rule enforces it and allows nothing.
	if len(p.Spec.Ingress) == 0 {
		p.Spec.Ingress = []IngressRule{{}}
	}
	if len(p.Spec.Egress) == 0 {
		p.Spec.Egress = []EgressRule{{}}
	}
	return p
}

// fqdnSelectors selects names exactly, or, generalising, by *.parent for
// names that share a parent domain (of at least two labels) with another.
func fqdnSelectors(names []string, generalize bool) []FQDNSelector {
	parent := func(n string) string {
		_, p, _ := strings.Cut(n, ".")
		if strings.Count(p, ".") < 1 {
			return ""
		}
		return p
	}
	count := map[string]int{}
	if generalize {
		for _, n := range names {
			if p := parent(n); p != "" {
				count[p]++
			}
		}
	}
	var out []FQDNSelector
	seen := map[string]bool{}
	for _, n := range names {
		if p := parent(n); count[p] >= 2 {
			if !seen[p] {
				out = append(out, FQDNSelector{MatchPattern: "*." + p})
				seen[p] = true
			}
			continue
		}
		out = append(out, FQDNSelector{MatchName: n})
	}
	return out
}

// rendered returns the port rules — with the DNS rule on a DNS server's
// port 53 when dnsRule, and HTTP rules on ports with requests when l7HTTP
// — and the ICMP rules.
func (a *ruleAcc) rendered(dnsRule bool, o Options) ([]PortRule, []ICMPRule) {
	var ports []PortRule
	var plain []string
	for _, port := range slices.Sorted(maps.Keys(a.ports)) {
		if o.L7HTTP && len(a.http[port]) > 0 && !a.noHTTP[port] {
			rules := slices.SortedFunc(maps.Keys(a.http[port]), func(x, y HTTPRule) int {
				return cmp.Or(strings.Compare(x.Method, y.Method), strings.Compare(x.Path, y.Path))
			})
			ports = append(ports, PortRule{Ports: renderPorts([]string{port}, false), Rules: &L7Rules{HTTP: rules}})
			continue
		}
		plain = append(plain, port)
	}
	if len(plain) > 0 {
		pr := PortRule{Ports: renderPorts(plain, o.PortRanges)}
		if a.dns && (dnsRule || o.DNSAll || o.L7DNS) {
			var dns []FQDNSelector
			if o.DNSAll || len(a.names) == 0 {
				dns = []FQDNSelector{{MatchPattern: "*"}}
			} else {
				for _, n := range slices.Sorted(maps.Keys(a.names)) {
					dns = append(dns, FQDNSelector{MatchName: n})
				}
			}
			pr.Rules = &L7Rules{DNS: dns}
		}
		ports = append([]PortRule{pr}, ports...)
	}
	var icmps []ICMPRule
	if len(a.icmp) > 0 {
		r := ICMPRule{}
		for _, f := range slices.Sorted(maps.Keys(a.icmp)) {
			fam, t, _ := strings.Cut(f, "/")
			n, _ := strconv.Atoi(t)
			r.Fields = append(r.Fields, ICMPField{Family: fam, Type: n})
		}
		icmps = []ICMPRule{r}
	}
	return ports, icmps
}

// addHTTP records an edge's HTTP requests for its port. Requests beyond
// the graph's cap, or connections without any, leave the port's HTTP
// unknown, and then no HTTP rule is written for it.
func (a *ruleAcc) addHTTP(port string, e *learn.Edge, generalize bool) {
	var kept uint64
	for _, n := range e.HTTP {
		kept += n
	}
	if e.HTTPTotal == 0 || kept < e.HTTPTotal {
		a.noHTTP[port] = true
		return
	}
	if a.http[port] == nil {
		a.http[port] = map[HTTPRule]bool{}
	}
	for r := range e.HTTP {
		a.http[port][HTTPRule{Method: regexp.QuoteMeta(r.Method), Path: pathPattern(r.Path, generalize)}] = true
	}
}

var (
	numericSegment = regexp.MustCompile(`^[0-9]+$`)
	uuidSegment    = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// pathPattern is the regular expression Cilium matches against the
// request path, which includes any query string.
func pathPattern(path string, generalize bool) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		switch {
		case generalize && numericSegment.MatchString(s):
			segs[i] = "[0-9]+"
		case generalize && uuidSegment.MatchString(s):
			segs[i] = "[0-9a-fA-F-]{36}"
		default:
			segs[i] = regexp.QuoteMeta(s)
		}
	}
	return strings.Join(segs, "/") + `(\?.*)?`
}

func renderPorts(ps []string, ranges bool) []PortProtocol {
	out := make([]PortProtocol, 0, len(ps))
	for _, p := range ps {
		port, proto, _ := strings.Cut(p, "/")
		out = append(out, PortProtocol{Port: port, Protocol: proto})
	}
	num := func(p PortProtocol) int { n, _ := strconv.Atoi(p.Port); return n }
	slices.SortFunc(out, func(a, b PortProtocol) int {
		return cmp.Or(strings.Compare(a.Protocol, b.Protocol), num(a)-num(b))
	})
	if !ranges {
		slices.SortStableFunc(out, func(a, b PortProtocol) int { return num(a) - num(b) })
		return out
	}
	// Fold runs of three or more consecutive ports of one protocol.
	var folded []PortProtocol
	for i := 0; i < len(out); {
		j := i
		for j+1 < len(out) && out[j+1].Protocol == out[i].Protocol && num(out[j+1]) == num(out[j])+1 {
			j++
		}
		if j-i >= 2 {
			folded = append(folded, PortProtocol{Port: out[i].Port, EndPort: int32(num(out[j])), Protocol: out[i].Protocol})
		} else {
			folded = append(folded, out[i:j+1]...)
		}
		i = j + 1
	}
	slices.SortStableFunc(folded, func(a, b PortProtocol) int { return num(a) - num(b) })
	return folded
}

var notDNS = regexp.MustCompile(`[^a-z0-9.-]+`)

// dnsName makes a valid DNS-1123 subdomain of any workload name.
func dnsName(s string) string {
	s = notDNS.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-.")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-.")
	}
	if s == "" {
		s = "workload"
	}
	return s
}

// validateAll validates policies on all cores; the first failure, in
// policy order, is returned.
func validateAll(ps []*Policy, v *crdschema.Validator) error {
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = Validate(ps[i], v)
			}
		})
	}
	for i := range ps {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			p := ps[i]
			return fmt.Errorf("policy %s/%s: %w (a cnpgen bug: please report it)", p.Metadata.Namespace, p.Metadata.Name, err)
		}
	}
	return nil
}

// Validate checks a policy with Cilium's Rule.Sanitize and Cilium's CRD
// schema.
func Validate(p *Policy, v *crdschema.Validator) error {
	b, err := json.Marshal(p.Spec)
	if err != nil {
		return err
	}
	var rule api.Rule
	if err := json.Unmarshal(b, &rule); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	if err := rule.Sanitize(); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	var obj map[string]any
	b, err = json.Marshal(p)
	if err == nil {
		err = json.Unmarshal(b, &obj)
	}
	if err != nil {
		return err
	}
	if errs := v.Validate(obj); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}
