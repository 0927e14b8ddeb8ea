package flowgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Options controls the output.
type Options struct {
	// Seed selects the random choices; the same seed and options give
	// byte-identical output.
	Seed int64
	// Flows is the number of flow lines to write (DefaultFlows if 0). The
	// output has at least this many and stops at the end of the
	// connection that reaches it.
	Flows int
	// Start is the time of the first flow (2026-11-01T10:00:00Z if zero).
	Start time.Time
}

// DefaultFlows is enough for every call of the topology to appear.
const DefaultFlows = 2000

// Stats counts what was written.
type Stats struct{ Flows, LostEvents int }

const cluster = "default"

var nodes = []string{"kind-worker", "kind-worker2", "kind-worker3"}

type pod struct {
	w        *workload
	name     string
	ip       string
	node     int
	id       uint32 // endpoint ID on its node
	identity uint32
	labels   []string
}

type gen struct {
	r     *rand.Rand
	w     *bufio.Writer
	now   time.Time
	pods  map[string][]*pod // ns/name -> replicas
	st    Stats
	buf   bytes.Buffer
	mopts protojson.MarshalOptions
	err   error
}

// Write writes `hubble observe -o jsonpb` lines to w.
func Write(w io.Writer, o Options) (Stats, error) {
	if o.Flows <= 0 {
		o.Flows = DefaultFlows
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	}
	g := &gen{
		r:     rand.New(rand.NewPCG(uint64(o.Seed), 0x636e7067656e)),
		w:     bufio.NewWriterSize(w, 1<<20),
		now:   o.Start,
		pods:  map[string][]*pod{},
		mopts: protojson.MarshalOptions{UseProtoNames: true},
	}
	g.makePods()
	// Every call once, in order, so that any size covers the topology;
	// then calls at random, weighted towards the busy ones.
	for i := 0; g.st.Flows < o.Flows && g.err == nil; i++ {
		c := calls[i%len(calls)]
		if i >= len(calls) {
			c = calls[g.r.IntN(len(calls))]
		}
		g.connection(c)
		if i%5000 == 4999 {
			g.lost()
		}
		g.now = g.now.Add(time.Duration(200+g.r.IntN(300)) * time.Millisecond)
	}
	if g.st.LostEvents == 0 && g.err == nil {
		g.lost()
	}
	if g.err != nil {
		return g.st, g.err
	}
	return g.st, g.w.Flush()
}

const k8sAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func (g *gen) rnd(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = k8sAlphabet[g.r.IntN(len(k8sAlphabet))]
	}
	return string(b)
}

func (g *gen) makePods() {
	ipNext := [3]int{10, 10, 10}
	for i, w := range workloads {
		identity := uint32(12000 + 1013*i)
		hash := g.rnd(10)
		for r := range w.replicas {
			name := fmt.Sprintf("%s-%s-%s", w.name, hash, g.rnd(5))
			if w.kind == "StatefulSet" {
				name = fmt.Sprintf("%s-%d", w.name, r)
			}
			n := (i + r) % len(nodes)
			p := &pod{w: w, identity: identity, name: name, node: n, ip: fmt.Sprintf("10.244.%d.%d", n+1, ipNext[n]), id: uint32(100 + 37*i + r)}
			ipNext[n]++
			for _, l := range w.labels {
				p.labels = append(p.labels, "k8s:"+l)
			}
			p.labels = append(p.labels,
				"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name="+w.ns,
				"k8s:io.cilium.k8s.policy.cluster="+cluster,
				"k8s:io.cilium.k8s.policy.serviceaccount="+w.sa,
				"k8s:io.kubernetes.pod.namespace="+w.ns)
			slices.Sort(p.labels)
			g.pods[w.ns+"/"+w.name] = append(g.pods[w.ns+"/"+w.name], p)
		}
	}
}

// end is one side of a connection as the generator sees it.
type end struct {
	pod      *pod   // nil for entities and external addresses
	identity uint32 // for non-pods
	labels   []string
	ip       string
	node     int // -1: not on a cluster node's pod network
	names    []string
}

func (g *gen) end(p Peer) end {
	switch {
	case p.Workload != "":
		ps := g.pods[p.Namespace+"/"+p.Workload]
		pd := ps[g.r.IntN(len(ps))]
		return end{pod: pd, ip: pd.ip, node: pd.node}
	case p.Entity == "host":
		n := g.r.IntN(len(nodes))
		return end{identity: 1, labels: []string{"reserved:host"}, ip: fmt.Sprintf("10.244.%d.1", n+1), node: n}
	case p.Entity == "health":
		n := g.r.IntN(len(nodes))
		return end{identity: 4, labels: []string{"reserved:health"}, ip: fmt.Sprintf("10.244.%d.2", n+1), node: n}
	case p.Entity == "kube-apiserver":
		return end{identity: 7, labels: []string{"reserved:kube-apiserver", "reserved:remote-node"}, ip: "172.18.0.2", node: -1}
	default:
		id, lbl := uint32(2), "reserved:world"
		if g.r.IntN(3) == 0 {
			id, lbl = 9, "reserved:world-ipv4"
		}
		return end{identity: id, labels: []string{lbl}, ip: p.IP, node: -1, names: []string{p.FQDN}}
	}
}

// endpoint renders one end as seen from node obs.
func (e end) endpoint(obs int) *flowpb.Endpoint {
	if e.pod == nil {
		return &flowpb.Endpoint{Identity: e.identity, Labels: e.labels}
	}
	ep := &flowpb.Endpoint{
		Identity:    e.pod.identity,
		ClusterName: cluster,
		Namespace:   e.pod.w.ns,
		Labels:      e.pod.labels,
		PodName:     e.pod.name,
		Workloads:   []*flowpb.Workload{{Name: e.pod.w.name, Kind: e.pod.w.kind}},
	}
	if e.pod.node == obs {
		ep.ID = e.pod.id
	}
	return ep
}

// pkt describes one event of a connection.
type pkt struct {
	obs      int // node that observes
	reply    bool
	isReply  *bool // nil: omit is_reply
	dir      flowpb.TrafficDirection
	point    flowpb.TraceObservationPoint
	flags    *flowpb.TCPFlags
	etype    int32
	verdict  flowpb.Verdict
	drop     flowpb.DropReason
	l7       *flowpb.Layer7
	dstNames []string
	delay    time.Duration
	icmpType uint32
}

func flags(s string) *flowpb.TCPFlags {
	f := &flowpb.TCPFlags{}
	for _, x := range strings.Split(s, ",") {
		switch x {
		case "SYN":
			f.SYN = true
		case "ACK":
			f.ACK = true
		case "PSH":
			f.PSH = true
		case "FIN":
			f.FIN = true
		}
	}
	return f
}

func ptr(b bool) *bool { return &b }

// connection emits every event of one connection of c.
func (g *gen) connection(c Call) {
	cl, sv := g.end(c.From), g.end(c.To)
	cport := uint32(32768 + g.r.IntN(28232))
	cnode, snode := cl.node, sv.node
	if cnode < 0 {
		cnode = snode
	}
	cross := snode >= 0 && snode != cnode
	var ps []pkt
	add := func(p pkt) { ps = append(ps, p) }
	reqPoint := flowpb.TraceObservationPoint_TO_ENDPOINT
	switch {
	case cross:
		reqPoint = flowpb.TraceObservationPoint_TO_OVERLAY
	case snode < 0 && c.To.Entity == "kube-apiserver":
		reqPoint = flowpb.TraceObservationPoint_TO_STACK
	case snode < 0:
		reqPoint = flowpb.TraceObservationPoint_TO_NETWORK
	}
	egressPV := cl.pod != nil && cl.pod.w.egressPolicy
	ingressPV := sv.pod != nil && sv.pod.w.ingressPolicy

	if c.Denied {
		// Policy drops at the side that enforces: verdict + drop pairs,
		// repeated by SYN retransmits.
		at := snode
		dir := flowpb.TrafficDirection_INGRESS
		if egressPV {
			at, dir = cnode, flowpb.TrafficDirection_EGRESS
		}
		reason := flowpb.DropReason(flowpb.DropReason_value[c.DropReason])
		for _, d := range []time.Duration{0, time.Second, 3 * time.Second} {
			add(pkt{obs: at, dir: dir, flags: flags("SYN"), etype: 5, verdict: flowpb.Verdict_DROPPED, drop: reason, delay: d})
			add(pkt{obs: at, dir: dir, flags: flags("SYN"), etype: 1, verdict: flowpb.Verdict_DROPPED, drop: reason, delay: d + 10*time.Microsecond})
		}
		g.emit(c, cl, sv, cport, ps)
		return
	}

	if c.Proto == "ICMPv4" {
		add(pkt{obs: snode, dir: flowpb.TrafficDirection_INGRESS, point: flowpb.TraceObservationPoint_TO_ENDPOINT, icmpType: 8, isReply: ptr(false)})
		add(pkt{obs: snode, reply: true, dir: flowpb.TrafficDirection_INGRESS, point: flowpb.TraceObservationPoint_TO_STACK, icmpType: 0, isReply: ptr(true), delay: 80 * time.Microsecond})
		g.emit(c, cl, sv, cport, ps)
		return
	}

	// DNS goes through the DNS proxy on the client's node.
	dns := c.Proto == "UDP" && c.Port == 53
	var name string
	if len(c.DNSNames) > 0 {
		name = c.DNSNames[g.r.IntN(len(c.DNSNames))]
	}
	http := len(c.HTTP) > 0
	var hc HTTPCall
	if http {
		hc = c.HTTP[g.r.IntN(len(c.HTTP))]
	}
	verdict := flowpb.Verdict_FORWARDED
	if dns || http {
		verdict = flowpb.Verdict_REDIRECTED
	}
	if egressPV || dns {
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, flags: flags("SYN"), etype: 5, verdict: verdict, isReply: ptr(false)})
	}
	if dns {
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: flowpb.TraceObservationPoint_TO_PROXY, isReply: ptr(false), delay: 20 * time.Microsecond})
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, etype: 129, l7: dnsRecord(name, false, c), isReply: ptr(false), delay: 40 * time.Microsecond})
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: reqPoint, isReply: ptr(false), delay: 60 * time.Microsecond})
		if cross {
			add(pkt{obs: snode, dir: flowpb.TrafficDirection_INGRESS, point: flowpb.TraceObservationPoint_TO_ENDPOINT, isReply: ptr(false), delay: 300 * time.Microsecond})
			add(pkt{obs: snode, reply: true, point: flowpb.TraceObservationPoint_TO_OVERLAY, delay: 700 * time.Microsecond})
		}
		add(pkt{obs: cnode, reply: true, dir: flowpb.TrafficDirection_EGRESS, etype: 129, l7: dnsRecord(name, true, c), isReply: ptr(true), delay: time.Millisecond})
		add(pkt{obs: cnode, reply: true, dir: flowpb.TrafficDirection_EGRESS, point: flowpb.TraceObservationPoint_TO_ENDPOINT, isReply: ptr(true), delay: 1100 * time.Microsecond})
		g.emit(c, cl, sv, cport, ps)
		return
	}

	names := sv.names
	d := time.Duration(0)
	step := func(x time.Duration) time.Duration { d += x + time.Duration(g.r.IntN(50))*time.Microsecond; return d }
	// Request SYN leaves the client...
	if cl.pod != nil || snode < 0 || cross {
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: reqPoint, flags: flags("SYN"), isReply: ptr(false), delay: step(10 * time.Microsecond), dstNames: names})
	}
	if http {
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: flowpb.TraceObservationPoint_TO_PROXY, flags: flags("SYN"), isReply: ptr(false), delay: step(5 * time.Microsecond)})
	}
	if snode >= 0 && (cross || cl.pod == nil) {
		// ...and arrives at the server.
		if ingressPV {
			add(pkt{obs: snode, dir: flowpb.TrafficDirection_INGRESS, flags: flags("SYN"), etype: 5, verdict: flowpb.Verdict_FORWARDED, isReply: ptr(false), delay: step(200 * time.Microsecond)})
		}
		add(pkt{obs: snode, dir: flowpb.TrafficDirection_INGRESS, point: flowpb.TraceObservationPoint_TO_ENDPOINT, flags: flags("SYN"), isReply: ptr(false), delay: step(20 * time.Microsecond)})
		back := flowpb.TraceObservationPoint_TO_OVERLAY
		if cl.pod == nil {
			back = flowpb.TraceObservationPoint_TO_STACK
		}
		var ir *bool
		if g.r.IntN(3) > 0 || !cross {
			ir = ptr(true) // older agents leave is_reply out on TO_OVERLAY replies
		}
		add(pkt{obs: snode, reply: true, dir: dirIf(ir, flowpb.TrafficDirection_INGRESS), point: back, flags: flags("SYN,ACK"), isReply: ir, delay: step(30 * time.Microsecond)})
	} else if snode >= 0 && ingressPV {
		add(pkt{obs: snode, dir: flowpb.TrafficDirection_INGRESS, flags: flags("SYN"), etype: 5, verdict: flowpb.Verdict_FORWARDED, isReply: ptr(false), delay: step(20 * time.Microsecond)})
	}
	if cl.pod != nil {
		add(pkt{obs: cnode, reply: true, dir: flowpb.TrafficDirection_EGRESS, point: flowpb.TraceObservationPoint_TO_ENDPOINT, flags: flags("SYN,ACK"), isReply: ptr(true), delay: step(400 * time.Microsecond)})
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: reqPoint, flags: flags("ACK"), isReply: ptr(false), delay: step(20 * time.Microsecond)})
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: reqPoint, flags: flags("PSH,ACK"), isReply: ptr(false), delay: step(30 * time.Microsecond)})
	}
	if http {
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, etype: 129, l7: httpRecord(hc, c, false), isReply: ptr(false), delay: step(100 * time.Microsecond)})
		add(pkt{obs: cnode, reply: true, dir: flowpb.TrafficDirection_EGRESS, etype: 129, l7: httpRecord(hc, c, true), isReply: ptr(true), delay: step(3 * time.Millisecond)})
	}
	if cl.pod != nil {
		add(pkt{obs: cnode, reply: true, dir: flowpb.TrafficDirection_EGRESS, point: flowpb.TraceObservationPoint_TO_ENDPOINT, flags: flags("PSH,ACK"), isReply: ptr(true), delay: step(2 * time.Millisecond)})
		add(pkt{obs: cnode, dir: flowpb.TrafficDirection_EGRESS, point: reqPoint, flags: flags("FIN,ACK"), isReply: ptr(false), delay: step(5 * time.Millisecond)})
	}
	g.emit(c, cl, sv, cport, ps)
}

func dirIf(ir *bool, d flowpb.TrafficDirection) flowpb.TrafficDirection {
	if ir == nil {
		return flowpb.TrafficDirection_TRAFFIC_DIRECTION_UNKNOWN
	}
	return d
}

func dnsRecord(name string, response bool, c Call) *flowpb.Layer7 {
	q := name + "."
	if name == "" {
		q = "kubernetes.default.svc.cluster.local."
	}
	d := &flowpb.DNS{Query: q, ObservationSource: "proxy", Qtypes: []string{"A"}}
	l7 := &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Dns{Dns: d}}
	if response {
		l7.Type = flowpb.L7FlowType_RESPONSE
		l7.LatencyNs = 412345
		d.Ttl = 30
		d.Rrtypes = []string{"A"}
		switch name {
		case "api.stripe.com":
			d.Ips = []string{stripe.IP}
		case "images.example.com":
			d.Ips = []string{images.IP}
		default:
			d.Ips = []string{fmt.Sprintf("10.96.%d.%d", len(name)%200, len(c.From.Workload)*7%250)}
		}
	}
	return l7
}

func httpRecord(h HTTPCall, c Call, response bool) *flowpb.Layer7 {
	rec := &flowpb.HTTP{Method: h.Method, Url: fmt.Sprintf("http://%s:%d%s", c.To.Workload, c.Port, h.Path), Protocol: "HTTP/1.1",
		Headers: []*flowpb.HTTPHeader{{Key: "User-Agent", Value: "shop-frontend/1.4"}, {Key: "X-Request-Id", Value: "5d3c2b1a"}}}
	l7 := &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Http{Http: rec}}
	if response {
		l7.Type = flowpb.L7FlowType_RESPONSE
		l7.LatencyNs = 2876543
		rec.Code = 200
		if strings.HasSuffix(h.Path, "1337") {
			rec.Code = 404
		}
	}
	return l7
}

func (g *gen) emit(c Call, cl, sv end, cport uint32, ps []pkt) {
	base := g.now
	for _, p := range ps {
		src, dst := cl, sv
		sport, dport := cport, uint32(c.Port)
		if p.reply {
			src, dst = sv, cl
			sport, dport = dport, sport
		}
		f := &flowpb.Flow{
			Time:             timestamppb.New(base.Add(p.delay)),
			Uuid:             g.uuid(),
			Verdict:          flowpb.Verdict_FORWARDED,
			IP:               &flowpb.IP{Source: src.ip, Destination: dst.ip, IpVersion: flowpb.IPVersion_IPv4},
			Source:           src.endpoint(p.obs),
			Destination:      dst.endpoint(p.obs),
			Type:             flowpb.FlowType_L3_L4,
			NodeName:         cluster + "/" + nodes[max(p.obs, 0)],
			EventType:        &flowpb.CiliumEventType{Type: 4},
			TrafficDirection: p.dir,
		}
		if p.verdict != 0 {
			f.Verdict = p.verdict
		}
		switch c.Proto {
		case "TCP":
			f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: sport, DestinationPort: dport, Flags: p.flags}}}
		case "UDP":
			f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: sport, DestinationPort: dport}}}
		case "ICMPv4":
			f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv4{ICMPv4: &flowpb.ICMPv4{Type: p.icmpType}}}
		}
		if p.isReply != nil {
			f.IsReply = wrapperspb.Bool(*p.isReply)
			//lint:ignore SA1019 Hubble still fills the deprecated field
			f.Reply = *p.isReply
		}
		switch p.etype {
		case 0:
			f.TraceObservationPoint = p.point
			f.EventType.SubType = int32(p.point)
			if p.point == flowpb.TraceObservationPoint_TO_ENDPOINT {
				f.EventType.SubType = 0
			}
			f.TraceReason = flowpb.TraceReason_ESTABLISHED
			if p.flags.GetSYN() && !p.flags.GetACK() {
				f.TraceReason = flowpb.TraceReason_NEW
			}
			if p.reply {
				f.TraceReason = flowpb.TraceReason_REPLY
			}
			f.DestinationNames = p.dstNames
		case 1, 5:
			f.EventType.Type = p.etype
			if p.verdict == flowpb.Verdict_DROPPED {
				f.DropReasonDesc = p.drop
				//lint:ignore SA1019 Hubble still fills the deprecated field
				f.DropReason = uint32(p.drop)
				if p.etype == 1 {
					f.EventType.SubType = int32(p.drop)
				}
			} else {
				f.PolicyMatchType = 2
			}
		case 129:
			f.EventType.Type = 129
			f.Type = flowpb.FlowType_L7
			f.L7 = p.l7
			if c.Proto == "TCP" {
				f.L4.GetTCP().Flags = nil
			}
		}
		g.write(&observer.GetFlowsResponse{
			ResponseTypes: &observer.GetFlowsResponse_Flow{Flow: f},
			NodeName:      f.NodeName,
			Time:          f.Time,
		})
		g.st.Flows++
	}
}

func (g *gen) lost() {
	n := uint64(1 + g.r.IntN(5))
	g.write(&observer.GetFlowsResponse{
		ResponseTypes: &observer.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: n}},
		NodeName:      cluster + "/" + nodes[g.r.IntN(len(nodes))],
		Time:          timestamppb.New(g.now),
	})
	g.st.LostEvents++
}

func (g *gen) uuid() string {
	a, b := g.r.Uint64(), g.r.Uint64()
	a = a&^0xf000 | 0x4000     // version 4
	b = b&^(0xc<<60) | 0x8<<60 // variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

func (g *gen) write(m proto.Message) {
	if g.err != nil {
		return
	}
	b, err := g.mopts.Marshal(m)
	if err != nil {
		g.err = err
		return
	}
	// protojson's whitespace is deliberately unstable; compact it.
	g.buf.Reset()
	if err := json.Compact(&g.buf, b); err != nil {
		g.err = err
		return
	}
	g.buf.WriteByte('\n')
	_, g.err = g.w.Write(g.buf.Bytes())
}
