package diff

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/cnpgen/cnpgen/learn"
)

// GraphIdentities builds evaluator identities for the peers of a learned
// graph: a workload gets back the namespace, namespace-label and cluster
// labels the graph keeps apart; an external address is a world identity
// with its address and the DNS names its client saw for it.
type GraphIdentities struct {
	g           *learn.Graph
	clusterName string
	byPeer      map[string]*Identity
}

// NewGraphIdentities returns identities for g's peers; clusterName is
// used for workloads learned without a cluster name.
func NewGraphIdentities(g *learn.Graph, clusterName string) *GraphIdentities {
	if clusterName == "" {
		clusterName = "default"
	}
	return &GraphIdentities{g: g, clusterName: clusterName, byPeer: map[string]*Identity{}}
}

// Peer returns the identity of a peer that is not an external address.
func (gi *GraphIdentities) Peer(p *learn.Peer) *Identity {
	if id, ok := gi.byPeer[p.Key()]; ok {
		return id
	}
	var id *Identity
	switch p.Kind {
	case learn.PeerWorkload:
		lbls := append([]string(nil), p.Labels...)
		lbls = append(lbls, "k8s:"+labelPodNamespace+"="+p.Namespace)
		for _, kv := range gi.g.NamespaceLabels(learn.NamespaceKey{Cluster: p.Cluster, Name: p.Namespace}) {
			lbls = append(lbls, "k8s:"+labelNamespaceLabel+"."+kv)
		}
		cluster := p.Cluster
		if cluster == "" {
			cluster = gi.clusterName
		}
		lbls = append(lbls, "k8s:"+labelPolicyCluster+"="+cluster)
		id = NewIdentity(lbls, netip.Addr{}, nil)
		id.Namespace = p.Namespace
	case learn.PeerEntity:
		lbls := p.Labels
		if len(lbls) == 0 {
			lbls = []string{"reserved:" + p.Entity}
		}
		id = NewIdentity(lbls, p.IP, p.Names)
	default:
		id = NewIdentity([]string{"reserved:world"}, p.IP, p.Names)
	}
	gi.byPeer[p.Key()] = id
	return id
}

// EdgeRequest is the connection an edge stands for.
func (gi *GraphIdentities) EdgeRequest(e *learn.Edge) *Request {
	from, to := gi.g.Peer(e.From), gi.g.Peer(e.To)
	if from == nil || to == nil {
		return nil
	}
	req := &Request{Src: gi.Peer(from), Proto: e.Proto, Port: e.Port}
	if to.Kind == learn.PeerExternal {
		names := gi.g.NamesFor(e.From, to.IP)
		req.Dst = NewIdentity([]string{"reserved:world"}, to.IP, names)
	} else {
		req.Dst = gi.Peer(to)
	}
	return req
}

// EdgeName is a short human name for an edge: "shop/web → shop/api 8080/TCP".
func EdgeName(g *learn.Graph, e *learn.Edge) string {
	from, to := g.Peer(e.From), g.Peer(e.To)
	var b strings.Builder
	b.WriteString(peerName(from))
	b.WriteString(" → ")
	b.WriteString(peerName(to))
	b.WriteByte(' ')
	b.WriteString(PortName(e.Proto, e.Port))
	return b.String()
}

func peerName(p *learn.Peer) string {
	if p == nil {
		return "?"
	}
	n := p.Name()
	if p.Kind == learn.PeerExternal && len(p.Names) > 0 {
		n += " (" + p.Names[0] + ")"
	}
	return n
}

// PortName formats a port and protocol as "8080/TCP", or "ICMPv4 type 8".
func PortName(proto learn.Protocol, port uint16) string {
	if proto.IsICMP() {
		return proto.String() + " type " + strconv.Itoa(int(port))
	}
	return strconv.Itoa(int(port)) + "/" + proto.String()
}

// ClusterOf returns the cluster name of g's workloads when they all
// carry the same one, else "".
func ClusterOf(g *learn.Graph) string {
	name := ""
	for _, p := range g.Peers() {
		if p.Kind != learn.PeerWorkload || p.Cluster == "" {
			continue
		}
		if name != "" && name != p.Cluster {
			return ""
		}
		name = p.Cluster
	}
	return name
}
