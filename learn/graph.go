package learn

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Caps on per-edge and per-peer detail, so that a path with an id in it
// cannot make the graph grow without bound. When a set is over its cap, the
// lexicographically smallest entries are kept, which keeps merging
// commutative and associative; totals still count everything.
const (
	maxHTTPPerEdge  = 256
	maxDNSPerEdge   = 256
	maxNamesPerPeer = 64
)

// Graph is the learned connection graph: peers, edges between them, the
// labels of the namespaces seen, and DNS answers seen per client. It is a
// plain value: learning adds to it, [Graph.Merge] combines two, and its
// encoding ([Graph.WriteTo]) is deterministic.
type Graph struct {
	peers      map[string]*Peer
	edges      map[EdgeKey]*Edge
	namespaces map[NamespaceKey]map[string]struct{}
	dns        map[dnsKey]map[string]struct{}
}

// EdgeKey identifies an edge: client and server peer keys, protocol and
// server port (the ICMP type for ICMP).
type EdgeKey struct {
	From, To string
	Proto    Protocol
	Port     uint16
}

// NamespaceKey names a namespace in a cluster.
type NamespaceKey struct {
	Cluster, Name string
}

type dnsKey struct {
	client string
	ip     netip.Addr
}

// Edge is an observed client→server path with its evidence.
type Edge struct {
	EdgeKey
	// Flows counts the connections observed: events of one connection
	// (both observation points, retransmits, policy-verdict and drop pairs)
	// count once per source.
	Flows uint64
	// First and Last are the times of the first and last event.
	First, Last time.Time
	// Verdicts counts connections per verdict: FORWARDED, REDIRECTED,
	// AUDIT, ERROR, or DROPPED:<drop reason>.
	Verdicts map[string]uint64
	// Policies Hubble named as allowing or denying the edge, as
	// kind:namespace/name.
	EgressAllowedBy, IngressAllowedBy, EgressDeniedBy, IngressDeniedBy map[string]struct{}
	// HTTP counts requests by method, path and host; HTTPTotal counts all,
	// including any beyond the cap.
	HTTP      map[HTTPRequest]uint64
	HTTPTotal uint64
	// DNS counts queries by name (lower case, no trailing dot); DNSTotal
	// counts all.
	DNS      map[string]uint64
	DNSTotal uint64
}

// HTTPRequest is the L7 detail of an HTTP request.
type HTTPRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Host   string `json:"host,omitempty"`
}

// NewGraph returns an empty graph.
func NewGraph() *Graph {
	return &Graph{
		peers:      map[string]*Peer{},
		edges:      map[EdgeKey]*Edge{},
		namespaces: map[NamespaceKey]map[string]struct{}{},
		dns:        map[dnsKey]map[string]struct{}{},
	}
}

// Peer returns the peer with the given key.
func (g *Graph) Peer(key string) *Peer { return g.peers[key] }

// Peers returns all peers, sorted by key.
func (g *Graph) Peers() []*Peer {
	out := slices.Collect(maps.Values(g.peers))
	slices.SortFunc(out, func(a, b *Peer) int { return strings.Compare(a.key, b.key) })
	return out
}

// Edges returns all edges, sorted by key.
func (g *Graph) Edges() []*Edge {
	out := slices.Collect(maps.Values(g.edges))
	slices.SortFunc(out, func(a, b *Edge) int { return compareEdgeKeys(a.EdgeKey, b.EdgeKey) })
	return out
}

// Len returns the number of peers and edges.
func (g *Graph) Len() (peers, edges int) { return len(g.peers), len(g.edges) }

// NamespaceLabels returns the labels seen on a namespace, as key=value.
func (g *Graph) NamespaceLabels(k NamespaceKey) []string {
	return slices.Sorted(maps.Keys(g.namespaces[k]))
}

// Namespaces returns the namespaces seen, sorted.
func (g *Graph) Namespaces() []NamespaceKey {
	return slices.SortedFunc(maps.Keys(g.namespaces), compareNamespaceKeys)
}

// NamesFor returns the DNS names known for an external address as seen by
// a client: names Hubble attached to flows (destination_names) and names
// whose DNS answers the client received.
func (g *Graph) NamesFor(client string, ip netip.Addr) []string {
	set := map[string]struct{}{}
	if p := g.peers[peerKey(&Peer{Kind: PeerExternal, IP: ip})]; p != nil {
		for _, n := range p.Names {
			set[n] = struct{}{}
		}
	}
	for n := range g.dns[dnsKey{client, ip}] {
		set[n] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}

// Window returns the earliest first-seen and latest last-seen time of all
// edges.
func (g *Graph) Window() (first, last time.Time) {
	for _, e := range g.edges {
		if !e.First.IsZero() && (first.IsZero() || e.First.Before(first)) {
			first = e.First
		}
		if e.Last.After(last) {
			last = e.Last
		}
	}
	return first, last
}

func compareEdgeKeys(a, b EdgeKey) int {
	if c := strings.Compare(a.From, b.From); c != 0 {
		return c
	}
	if c := strings.Compare(a.To, b.To); c != 0 {
		return c
	}
	if a.Proto != b.Proto {
		return int(a.Proto) - int(b.Proto)
	}
	return int(a.Port) - int(b.Port)
}

func compareNamespaceKeys(a, b NamespaceKey) int {
	if c := strings.Compare(a.Cluster, b.Cluster); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// addPeer returns the graph's peer for p, adding p or merging its
// attributes into the existing one.
func (g *Graph) addPeer(p *Peer) *Peer {
	have := g.peers[p.key]
	if have == nil {
		c := *p
		c.Labels = slices.Clone(p.Labels)
		c.Workloads = slices.Clone(p.Workloads)
		c.Names = nil
		g.peers[p.key] = &c
		have = &c
		mergeNames(have, p.Names)
		return have
	}
	for _, w := range p.Workloads {
		addWorkload(have, w)
	}
	mergeNames(have, p.Names)
	return have
}

func addWorkload(p *Peer, w Workload) {
	for i, h := range p.Workloads {
		if h.Name != w.Name {
			continue
		}
		if h.Kind == w.Kind || w.Kind == "" {
			return
		}
		if h.Kind == "" || h.Kind == "Pod" {
			// A guessed kind yields to a known one.
			p.Workloads[i].Kind = w.Kind
			slices.SortFunc(p.Workloads, compareWorkloads)
			return
		}
	}
	p.Workloads = append(p.Workloads, w)
	slices.SortFunc(p.Workloads, compareWorkloads)
}

func compareWorkloads(a, b Workload) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Kind, b.Kind)
}

func mergeNames(p *Peer, names []string) {
	if len(names) == 0 {
		return
	}
	for _, n := range names {
		n = normalizeDNSName(n)
		if i, found := slices.BinarySearch(p.Names, n); !found {
			p.Names = slices.Insert(p.Names, i, n)
		}
	}
	if len(p.Names) > maxNamesPerPeer {
		p.Names = p.Names[:maxNamesPerPeer]
	}
}

func (g *Graph) edge(k EdgeKey) *Edge {
	e := g.edges[k]
	if e == nil {
		e = &Edge{EdgeKey: k}
		g.edges[k] = e
	}
	return e
}

func (g *Graph) addNamespaceLabels(k NamespaceKey, labels []string) {
	set := g.namespaces[k]
	if set == nil {
		set = map[string]struct{}{}
		g.namespaces[k] = set
	}
	for _, l := range labels {
		set[l] = struct{}{}
	}
}

func (g *Graph) addResolution(client string, ip netip.Addr, name string) {
	k := dnsKey{client, ip}
	set := g.dns[k]
	if set == nil {
		set = map[string]struct{}{}
		g.dns[k] = set
	}
	set[name] = struct{}{}
	trimSet(set, maxNamesPerPeer)
}

// seen records an event time on the edge.
func (e *Edge) seen(t time.Time) {
	if t.IsZero() {
		return
	}
	if e.First.IsZero() || t.Before(e.First) {
		e.First = t
	}
	if t.After(e.Last) {
		e.Last = t
	}
}

func (e *Edge) addVerdict(v string, n uint64) {
	if e.Verdicts == nil {
		e.Verdicts = map[string]uint64{}
	}
	e.Verdicts[v] += n
}

func addRefs(dst *map[string]struct{}, refs []PolicyRef) {
	addSet(dst, func(yield func(string) bool) {
		for _, r := range refs {
			if !yield(r.String()) {
				return
			}
		}
	})
}

func (e *Edge) addHTTP(r HTTPRequest, n uint64) {
	if e.HTTP == nil {
		e.HTTP = map[HTTPRequest]uint64{}
	}
	e.HTTP[r] += n
	if len(e.HTTP) > 2*maxHTTPPerEdge {
		trimMap(e.HTTP, maxHTTPPerEdge, compareHTTP)
	}
}

func (e *Edge) addDNS(name string, n uint64) {
	if e.DNS == nil {
		e.DNS = map[string]uint64{}
	}
	e.DNS[name] += n
	if len(e.DNS) > 2*maxDNSPerEdge {
		trimMap(e.DNS, maxDNSPerEdge, strings.Compare)
	}
}

// normalize trims every capped set to its cap. Sets may grow to twice
// their cap while learning; they are trimmed before the graph is read.
func (g *Graph) normalize() {
	for _, e := range g.edges {
		trimMap(e.HTTP, maxHTTPPerEdge, compareHTTP)
		trimMap(e.DNS, maxDNSPerEdge, strings.Compare)
	}
}

func compareHTTP(a, b HTTPRequest) int {
	if c := strings.Compare(a.Method, b.Method); c != 0 {
		return c
	}
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	return strings.Compare(a.Host, b.Host)
}

// trimMap keeps the n smallest keys of m.
func trimMap[K comparable, V any](m map[K]V, n int, cmp func(a, b K) int) {
	if len(m) <= n {
		return
	}
	keys := slices.SortedFunc(maps.Keys(m), cmp)
	for _, k := range keys[n:] {
		delete(m, k)
	}
}

func trimSet(m map[string]struct{}, n int) {
	trimMap(m, n, strings.Compare)
}

// normalizeDNSName lower-cases a name and drops the trailing dot.
func normalizeDNSName(n string) string {
	n = strings.TrimSuffix(n, ".")
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(n)
		}
	}
	return n
}
