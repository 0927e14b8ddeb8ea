package learn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// The on-disk graph format. Version 1 is the first; a later cnpgen that
// changes the format bumps it and keeps reading the older versions.
const (
	graphFormat  = "cnpgen-graph"
	GraphVersion = 1
)

// ErrNotGraph is returned when a file is not a cnpgen graph.
var ErrNotGraph = errors.New("not a cnpgen graph")

type fileGraph struct {
	Format     string          `json:"format"`
	Version    int             `json:"version"`
	Namespaces []fileNamespace `json:"namespaces"`
	Peers      []filePeer      `json:"peers"`
	Edges      []fileEdge      `json:"edges"`
	DNS        []fileDNS       `json:"dns"`
}

type fileNamespace struct {
	Cluster string   `json:"cluster,omitempty"`
	Name    string   `json:"name"`
	Labels  []string `json:"labels,omitempty"`
}

type filePeer struct {
	ID string `json:"id"`
	Peer
}

type fileEdge struct {
	From             string            `json:"from"`
	To               string            `json:"to"`
	Proto            string            `json:"proto"`
	Port             uint16            `json:"port"`
	Flows            uint64            `json:"flows"`
	First            *time.Time        `json:"first,omitempty"`
	Last             *time.Time        `json:"last,omitempty"`
	Verdicts         map[string]uint64 `json:"verdicts,omitempty"`
	EgressAllowedBy  []string          `json:"egressAllowedBy,omitempty"`
	IngressAllowedBy []string          `json:"ingressAllowedBy,omitempty"`
	EgressDeniedBy   []string          `json:"egressDeniedBy,omitempty"`
	IngressDeniedBy  []string          `json:"ingressDeniedBy,omitempty"`
	HTTP             []fileHTTP        `json:"http,omitempty"`
	HTTPTotal        uint64            `json:"httpTotal,omitempty"`
	DNS              []fileCount       `json:"dns,omitempty"`
	DNSTotal         uint64            `json:"dnsTotal,omitempty"`
}

type fileHTTP struct {
	HTTPRequest
	Count uint64 `json:"count"`
}

type fileCount struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

type fileDNS struct {
	Client string     `json:"client"`
	IP     netip.Addr `json:"ip"`
	Names  []string   `json:"names"`
}

// peerIDs gives every peer a short, readable, unique id for the file:
// namespace/workload, entity:name or the address, prefixed with the
// cluster when the graph spans several, marked ~unlabelled for workloads
// whose identity labels Hubble did not report, and suffixed with a hash of
// the peer's key where two peers would otherwise share an id.
func (g *Graph) peerIDs() map[string]string {
	clusters := map[string]struct{}{}
	for _, p := range g.peers {
		if p.Kind == PeerWorkload && p.Cluster != "" {
			clusters[p.Cluster] = struct{}{}
		}
	}
	base := make(map[string]string, len(g.peers))
	count := map[string]int{}
	for k, p := range g.peers {
		id := p.Name()
		if p.Kind == PeerWorkload && len(clusters) > 1 && p.Cluster != "" {
			id = p.Cluster + "/" + id
		}
		if p.Kind == PeerWorkload && len(p.Labels) == 0 {
			id += "~unlabelled"
		}
		base[k] = id
		count[id]++
	}
	ids := make(map[string]string, len(g.peers))
	for k, id := range base {
		if count[id] > 1 {
			sum := sha256.Sum256([]byte(k))
			id += "~" + hex.EncodeToString(sum[:4])
		}
		ids[k] = id
	}
	return ids
}

// Encode returns the graph's file form: JSON with one namespace, peer,
// edge or DNS answer per line, sorted, so that it diffs well. The same
// graph always encodes to the same bytes.
func (g *Graph) Encode() []byte {
	g.normalize()
	ids := g.peerIDs()
	var f fileGraph
	for _, k := range g.Namespaces() {
		f.Namespaces = append(f.Namespaces, fileNamespace{Cluster: k.Cluster, Name: k.Name, Labels: g.NamespaceLabels(k)})
	}
	for k, p := range g.peers {
		f.Peers = append(f.Peers, filePeer{ID: ids[k], Peer: *p})
	}
	slices.SortFunc(f.Peers, func(a, b filePeer) int { return strings.Compare(a.ID, b.ID) })
	for _, e := range g.edges {
		fe := fileEdge{
			From: ids[e.From], To: ids[e.To], Proto: e.Proto.String(), Port: e.Port,
			Flows: e.Flows, Verdicts: e.Verdicts,
			EgressAllowedBy:  sortedSet(e.EgressAllowedBy),
			IngressAllowedBy: sortedSet(e.IngressAllowedBy),
			EgressDeniedBy:   sortedSet(e.EgressDeniedBy),
			IngressDeniedBy:  sortedSet(e.IngressDeniedBy),
			HTTPTotal:        e.HTTPTotal, DNSTotal: e.DNSTotal,
		}
		if !e.First.IsZero() {
			first, last := e.First.UTC(), e.Last.UTC()
			fe.First, fe.Last = &first, &last
		}
		for _, r := range slices.SortedFunc(maps.Keys(e.HTTP), compareHTTP) {
			fe.HTTP = append(fe.HTTP, fileHTTP{r, e.HTTP[r]})
		}
		for _, n := range slices.Sorted(maps.Keys(e.DNS)) {
			fe.DNS = append(fe.DNS, fileCount{n, e.DNS[n]})
		}
		f.Edges = append(f.Edges, fe)
	}
	slices.SortFunc(f.Edges, func(a, b fileEdge) int {
		return cmpJoin(strings.Compare(a.From, b.From), strings.Compare(a.To, b.To),
			strings.Compare(a.Proto, b.Proto), int(a.Port)-int(b.Port))
	})
	for k, set := range g.dns {
		f.DNS = append(f.DNS, fileDNS{Client: ids[k.client], IP: k.ip, Names: sortedSet(set)})
	}
	slices.SortFunc(f.DNS, func(a, b fileDNS) int {
		return cmpJoin(strings.Compare(a.Client, b.Client), a.IP.Compare(b.IP))
	})

	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"format\": %q,\n  \"version\": %d,\n", graphFormat, GraphVersion)
	writeList(&b, "namespaces", f.Namespaces, false)
	writeList(&b, "peers", f.Peers, false)
	writeList(&b, "edges", f.Edges, false)
	writeList(&b, "dns", f.DNS, true)
	b.WriteString("}\n")
	return b.Bytes()
}

func writeList[T any](b *bytes.Buffer, name string, items []T, last bool) {
	fmt.Fprintf(b, "  %q: [", name)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		line, err := json.Marshal(it)
		if err != nil {
			panic(fmt.Sprintf("encoding graph %s: %v", name, err)) // only plain values here
		}
		b.Write(line)
	}
	if len(items) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("]")
	if !last {
		b.WriteByte(',')
	}
	b.WriteByte('\n')
}

func cmpJoin(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

func sortedSet(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// WriteTo writes the encoded graph to w.
func (g *Graph) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(g.Encode())
	return int64(n), err
}

// ReadGraph decodes a graph written by [Graph.Encode]. Errors name the
// offending line or entry.
func ReadGraph(r io.Reader) (*Graph, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return DecodeGraph(data)
}

// DecodeGraph is [ReadGraph] on bytes.
func DecodeGraph(data []byte) (*Graph, error) {
	var head struct {
		Format  string `json:"format"`
		Version *int   `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, jsonError(data, err)
	}
	switch {
	case head.Format != graphFormat || head.Version == nil:
		return nil, fmt.Errorf("%w (no \"format\": %q and version)", ErrNotGraph, graphFormat)
	case *head.Version > GraphVersion:
		return nil, fmt.Errorf("graph format version %d is newer than this cnpgen reads (%d): use a newer cnpgen", *head.Version, GraphVersion)
	case *head.Version < 1:
		return nil, fmt.Errorf("graph format version %d is not valid", *head.Version)
	}
	var f fileGraph
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, jsonError(data, err)
	}
	return fromFile(&f)
}

func fromFile(f *fileGraph) (*Graph, error) {
	g := NewGraph()
	for i, n := range f.Namespaces {
		if n.Name == "" {
			return nil, fmt.Errorf("namespaces[%d]: empty name", i)
		}
		k := NamespaceKey{n.Cluster, n.Name}
		if _, dup := g.namespaces[k]; dup {
			return nil, fmt.Errorf("namespaces[%d]: duplicate namespace %s", i, n.Name)
		}
		g.addNamespaceLabels(k, n.Labels)
	}
	keys := map[string]string{}
	for i, fp := range f.Peers {
		p := fp.Peer
		if err := validatePeer(&p); err != nil {
			return nil, fmt.Errorf("peers[%d] (%s): %w", i, fp.ID, err)
		}
		if fp.ID == "" {
			return nil, fmt.Errorf("peers[%d]: empty id", i)
		}
		if _, dup := keys[fp.ID]; dup {
			return nil, fmt.Errorf("peers[%d]: duplicate id %q", i, fp.ID)
		}
		p.key = peerKey(&p)
		if _, dup := g.peers[p.key]; dup {
			return nil, fmt.Errorf("peers[%d] (%s): same peer as an earlier entry", i, fp.ID)
		}
		keys[fp.ID] = p.key
		g.peers[p.key] = &p
	}
	peer := func(where, id string) (string, error) {
		k, ok := keys[id]
		if !ok {
			return "", fmt.Errorf("%s: unknown peer %q", where, id)
		}
		return k, nil
	}
	for i, fe := range f.Edges {
		where := fmt.Sprintf("edges[%d]", i)
		from, err := peer(where+".from", fe.From)
		if err != nil {
			return nil, err
		}
		to, err := peer(where+".to", fe.To)
		if err != nil {
			return nil, err
		}
		proto, ok := ParseProtocol(fe.Proto)
		if !ok || proto == ProtoOther {
			return nil, fmt.Errorf("%s.proto: unknown protocol %q", where, fe.Proto)
		}
		k := EdgeKey{From: from, To: to, Proto: proto, Port: fe.Port}
		if _, dup := g.edges[k]; dup {
			return nil, fmt.Errorf("%s: duplicate edge %s -> %s %s/%d", where, fe.From, fe.To, fe.Proto, fe.Port)
		}
		e := &Edge{Flows: fe.Flows, HTTPTotal: fe.HTTPTotal, DNSTotal: fe.DNSTotal, Verdicts: fe.Verdicts}
		if fe.First != nil {
			e.First = *fe.First
		}
		if fe.Last != nil {
			e.Last = *fe.Last
		}
		addSet(&e.EgressAllowedBy, slices.Values(fe.EgressAllowedBy))
		addSet(&e.IngressAllowedBy, slices.Values(fe.IngressAllowedBy))
		addSet(&e.EgressDeniedBy, slices.Values(fe.EgressDeniedBy))
		addSet(&e.IngressDeniedBy, slices.Values(fe.IngressDeniedBy))
		for _, h := range fe.HTTP {
			e.addHTTP(h.HTTPRequest, h.Count)
		}
		for _, d := range fe.DNS {
			e.addDNS(d.Name, d.Count)
		}
		g.edge(k).add(e)
	}
	for i, d := range f.DNS {
		client, err := peer(fmt.Sprintf("dns[%d].client", i), d.Client)
		if err != nil {
			return nil, err
		}
		if !d.IP.IsValid() {
			return nil, fmt.Errorf("dns[%d].ip: missing address", i)
		}
		for _, n := range d.Names {
			g.addResolution(client, d.IP, n)
		}
	}
	g.normalize()
	return g, nil
}

func validatePeer(p *Peer) error {
	switch p.Kind {
	case PeerWorkload:
		if p.Namespace == "" {
			return errors.New("workload without namespace")
		}
		if len(p.Labels) == 0 && len(p.Workloads) == 0 {
			return errors.New("workload without labels or workload name")
		}
		for i, l := range p.Labels {
			if err := validLabel(l); err != nil {
				return fmt.Errorf("labels[%d]: %w", i, err)
			}
		}
		if !slices.IsSorted(p.Labels) {
			slices.Sort(p.Labels)
		}
	case PeerEntity:
		if p.Entity == "" {
			return errors.New("entity without a name")
		}
	case PeerExternal:
		if !p.IP.IsValid() {
			return errors.New("external peer without an address")
		}
	default:
		return fmt.Errorf("unknown kind %q", p.Kind)
	}
	slices.SortFunc(p.Workloads, compareWorkloads)
	slices.Sort(p.Names)
	return nil
}

// jsonError adds a line number to encoding/json errors.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		// encoding/json gives no offset for unknown fields; the first
		// place the key occurs is where it is.
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			off = int64(bytes.Index(data, []byte(name+":")))
		}
	}
	if off < 0 {
		return err
	}
	line := bytes.Count(data[:min(int(off), len(data))], []byte("\n")) + 1
	return fmt.Errorf("line %d: %w", line, err)
}
