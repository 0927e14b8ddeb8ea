package learn

// Merge adds everything in o to g: peers, edges (counts added, time windows
// widened, detail united), namespace labels and DNS answers. Merging is
// commutative and associative, so graphs learned on different nodes, days
// or clusters combine into the same graph in any order.
func (g *Graph) Merge(o *Graph) {
	for _, p := range o.peers {
		g.addPeer(p)
	}
	for k, oe := range o.edges {
		e := g.edge(k)
		e.Flows += oe.Flows
		e.seen(oe.First)
		e.seen(oe.Last)
		for v, n := range oe.Verdicts {
			e.addVerdict(v, n)
		}
		unite(&e.EgressAllowedBy, oe.EgressAllowedBy)
		unite(&e.IngressAllowedBy, oe.IngressAllowedBy)
		unite(&e.EgressDeniedBy, oe.EgressDeniedBy)
		unite(&e.IngressDeniedBy, oe.IngressDeniedBy)
		for r, n := range oe.HTTP {
			e.addHTTP(r, n)
		}
		e.HTTPTotal += oe.HTTPTotal
		for d, n := range oe.DNS {
			e.addDNS(d, n)
		}
		e.DNSTotal += oe.DNSTotal
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

func unite(dst *map[string]struct{}, src map[string]struct{}) {
	for k := range src {
		if *dst == nil {
			*dst = map[string]struct{}{}
		}
		(*dst)[k] = struct{}{}
	}
}
