package learn

import (
	"iter"
	"maps"
)

// Merge adds everything in o to g: peers, edges (counts added, time windows
// widened, detail united), namespace labels and DNS answers. Merging is
// commutative and associative, so graphs learned on different nodes, days
// or clusters combine into the same graph in any order.
func (g *Graph) Merge(o *Graph) {
	for _, p := range o.peers {
		g.addPeer(p)
	}
	for k, oe := range o.edges {
		g.edge(k).add(oe)
	}
	for k, set := range o.namespaces {
		for l := range set {
			g.addNamespaceLabels(k, []string{l})
		}
	}
	for k, set := range o.dns {
		for n := range set {
			g.addResolution(k.client, k.ip, n)
		}
	}
	g.normalize()
}

// add adds o's evidence to e.
func (e *Edge) add(o *Edge) {
	e.Flows += o.Flows
	e.seen(o.First)
	e.seen(o.Last)
	for v, n := range o.Verdicts {
		e.addVerdict(v, n)
	}
	addSet(&e.EgressAllowedBy, maps.Keys(o.EgressAllowedBy))
	addSet(&e.IngressAllowedBy, maps.Keys(o.IngressAllowedBy))
	addSet(&e.EgressDeniedBy, maps.Keys(o.EgressDeniedBy))
	addSet(&e.IngressDeniedBy, maps.Keys(o.IngressDeniedBy))
	for r, n := range o.HTTP {
		e.addHTTP(r, n)
	}
	e.HTTPTotal += o.HTTPTotal
	for d, n := range o.DNS {
		e.addDNS(d, n)
	}
	e.DNSTotal += o.DNSTotal
}

// addSet adds keys to the set *dst, creating it if needed.
func addSet(dst *map[string]struct{}, keys iter.Seq[string]) {
	for k := range keys {
		if *dst == nil {
			*dst = map[string]struct{}{}
		}
		(*dst)[k] = struct{}{}
	}
}
