package diff

import (
	"net/netip"
	"net/url"
	"slices"
	"strings"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/cnpgen/cnpgen/learn"
)

// Skip reasons for flows that are not evaluated.
const (
	SkipReply    = "reply"
	SkipResponse = "l7-response"
	SkipNoPeer   = "unknown-identity"
	SkipProtocol = "unsupported-protocol"
)

// RequestFromFlow turns a flow into the connection to decide. Replies are
// not evaluated (the datapath skips policy for them) and L7 responses
// belong to a request already evaluated: both return a skip reason.
func RequestFromFlow(f *learn.Flow) (*Request, string) {
	if f.Type == flowpb.FlowType_SOCK || f.EventType == 7 {
		return nil, string(learn.SkipSocketTrace)
	}
	if f.L7 != nil && f.L7.Type == flowpb.L7FlowType_RESPONSE {
		return nil, SkipResponse
	}
	reply, why := learn.Direction(f)
	if why != "" {
		return nil, string(why)
	}
	if reply {
		return nil, SkipReply
	}
	if f.Proto.IsICMP() && learn.IsICMPError(f.Proto, f.ICMPType) {
		return nil, string(learn.SkipICMPError)
	}
	if len(f.Source.Labels) == 0 && f.Source.Identity == 0 || len(f.Destination.Labels) == 0 && f.Destination.Identity == 0 {
		return nil, SkipNoPeer
	}
	req := &Request{
		Src:   identityFromEndpoint(&f.Source, f.SrcIP, f.SourceNames),
		Dst:   identityFromEndpoint(&f.Destination, f.DstIP, f.DestinationNames),
		Proto: f.Proto,
		Port:  f.DstPort,
	}
	switch f.Proto {
	case learn.ProtoTCP, learn.ProtoUDP, learn.ProtoSCTP:
	case learn.ProtoICMPv4, learn.ProtoICMPv6:
		req.Port = uint16(f.ICMPType)
	default:
		return nil, SkipProtocol
	}
	if f.L7 != nil {
		if h := f.L7.HTTP; h != nil {
			req.HTTP = httpRequest(h.Method, h.URL)
			req.HTTP.Headers = h.Headers
		}
		if d := f.L7.DNS; d != nil {
			req.DNSQuery = d.Query
		}
	}
	return req, ""
}

func identityFromEndpoint(ep *learn.Endpoint, ip netip.Addr, names []string) *Identity {
	lbls := ep.Labels
	if len(lbls) == 0 {
		if name, ok := learn.ReservedName(ep.Identity); ok {
			lbls = []string{"reserved:" + name}
		}
	}
	id := NewIdentity(lbls, ip, names)
	if id.Endpoint && ep.Namespace != "" {
		id.Namespace, id.Pod = ep.Namespace, ep.PodName
	}
	return id
}

// httpRequest splits the URL Hubble reports into path (with query, as
// Envoy's :path) and host.
func httpRequest(method, raw string) *HTTPRequest {
	r := &HTTPRequest{Method: method}
	u, err := url.Parse(raw)
	if err != nil {
		r.Path = raw
		return r
	}
	r.Host = u.Host
	r.Path = u.EscapedPath()
	if r.Path == "" {
		r.Path = "/"
	}
	if u.RawQuery != "" {
		r.Path += "?" + u.RawQuery
	}
	if strings.HasPrefix(raw, "/") {
		r.Host = ""
	}
	return r
}

// NameCache remembers the addresses DNS responses gave for names, as
// Cilium's DNS proxy does, so that flows to those addresses match
// toFQDNs rules even when Hubble does not print their fqdn: labels.
type NameCache struct {
	names map[netip.Addr][]string
}

// NewNameCache returns an empty cache.
func NewNameCache() *NameCache { return &NameCache{names: map[netip.Addr][]string{}} }

// Observe records the answers of a DNS response flow.
func (c *NameCache) Observe(f *learn.Flow) {
	if f.L7 == nil || f.L7.DNS == nil || f.L7.Type != flowpb.L7FlowType_RESPONSE {
		return
	}
	q := strings.TrimSuffix(strings.ToLower(f.L7.DNS.Query), ".")
	if q == "" {
		return
	}
	for _, ip := range f.L7.DNS.IPs {
		if !slices.Contains(c.names[ip], q) {
			c.names[ip] = append(c.names[ip], q)
		}
	}
}

// Annotate adds the names known for the flow's destination to its
// request.
func (c *NameCache) Annotate(req *Request) {
	if req.Dst == nil || !req.Dst.world {
		return
	}
	known := c.names[req.Dst.IP]
	if len(known) == 0 {
		return
	}
	names := slices.Clone(req.Dst.Names)
	added := false
	for _, n := range known {
		if !slices.Contains(names, n) {
			names = append(names, n)
			added = true
		}
	}
	if added {
		slices.Sort(names)
		req.Dst = NewIdentity(req.Dst.Labels.GetModel(), req.Dst.IP, names)
	}
}
