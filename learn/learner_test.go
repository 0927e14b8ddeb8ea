package learn

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func pod(ns, podName string, labels ...string) *flowpb.Endpoint {
	all := append([]string{
		"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + ns,
		"k8s:io.cilium.k8s.policy.cluster=default",
		"k8s:io.kubernetes.pod.namespace=" + ns,
	}, labels...)
	slices.Sort(all)
	return &flowpb.Endpoint{Identity: 1000, Namespace: ns, PodName: podName, Labels: all}
}

func reserved(id uint32, names ...string) *flowpb.Endpoint {
	ep := &flowpb.Endpoint{Identity: id}
	for _, n := range names {
		ep.Labels = append(ep.Labels, "reserved:"+n)
	}
	return ep
}

var (
	frontend = pod("shop", "frontend-7d9c8b6f4d-x2kq9", "k8s:app=frontend", "k8s:pod-template-hash=7d9c8b6f4d")
	catalog  = pod("shop", "catalog-5f7b9c6d8f-q4tr9", "k8s:app=catalog")
	coredns  = pod("kube-system", "coredns-558bd4d5db-9grjv", "k8s:k8s-app=kube-dns")
	host     = reserved(1, "host")
	world    = reserved(2, "world")
)

// flow builds a trace flow from a to b over TCP, then applies opts.
type opt func(*flowpb.Flow)

func tcp(src, dst uint32, flags ...string) opt {
	return func(f *flowpb.Flow) {
		fl := &flowpb.TCPFlags{}
		for _, x := range flags {
			switch x {
			case "SYN":
				fl.SYN = true
			case "ACK":
				fl.ACK = true
			case "FIN":
				fl.FIN = true
			case "PSH":
				fl.PSH = true
			}
		}
		f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: src, DestinationPort: dst, Flags: fl}}}
	}
}

func udp(src, dst uint32) opt {
	return func(f *flowpb.Flow) {
		f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: src, DestinationPort: dst}}}
	}
}

func icmp4(typ uint32) opt {
	return func(f *flowpb.Flow) {
		f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv4{ICMPv4: &flowpb.ICMPv4{Type: typ}}}
	}
}

func isReply(v bool) opt { return func(f *flowpb.Flow) { f.IsReply = wrapperspb.Bool(v) } }
func at(d time.Duration) opt {
	return func(f *flowpb.Flow) { f.Time = timestamppb.New(t0.Add(d)) }
}
func eventType(t int32) opt {
	return func(f *flowpb.Flow) { f.EventType = &flowpb.CiliumEventType{Type: t} }
}
func dropped(r flowpb.DropReason) opt {
	return func(f *flowpb.Flow) {
		f.Verdict = flowpb.Verdict_DROPPED
		f.DropReasonDesc = r
		f.IsReply = nil
	}
}
func verdict(v flowpb.Verdict) opt { return func(f *flowpb.Flow) { f.Verdict = v } }
func obs(p flowpb.TraceObservationPoint) opt {
	return func(f *flowpb.Flow) { f.TraceObservationPoint = p }
}
func node(n string) opt        { return func(f *flowpb.Flow) { f.NodeName = n } }
func dstNames(n ...string) opt { return func(f *flowpb.Flow) { f.DestinationNames = n } }

func flow(src, dst *flowpb.Endpoint, srcIP, dstIP string, opts ...opt) *flowpb.Flow {
	f := &flowpb.Flow{
		Time:        timestamppb.New(t0),
		Verdict:     flowpb.Verdict_FORWARDED,
		Source:      src,
		Destination: dst,
		IP:          &flowpb.IP{Source: srcIP, Destination: dstIP, IpVersion: flowpb.IPVersion_IPv4},
		Type:        flowpb.FlowType_L3_L4,
		EventType:   &flowpb.CiliumEventType{Type: 4},
		IsReply:     wrapperspb.Bool(false),
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

// reverse builds the reply packet of a request built by flow.
func reverse(f *flowpb.Flow) *flowpb.Flow {
	r := flow(f.Destination, f.Source, f.IP.Destination, f.IP.Source, isReply(true))
	r.Time = f.Time
	switch p := f.L4.Protocol.(type) {
	case *flowpb.Layer4_TCP:
		tcp(p.TCP.DestinationPort, p.TCP.SourcePort, "ACK")(r)
	case *flowpb.Layer4_UDP:
		udp(p.UDP.DestinationPort, p.UDP.SourcePort)(r)
	}
	return r
}

type learned struct {
	Edges   []string
	Skipped map[SkipReason]uint64
}

// learnFlows learns flows and describes the edges as
// "from -> to PROTO/port flows=N verdicts".
func learnFlows(t *testing.T, flows ...*flowpb.Flow) (*Graph, learned) {
	t.Helper()
	g := NewGraph()
	l := NewLearner(g, nil)
	for i, pf := range flows {
		f, err := FromProto(pf)
		if err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		l.Add(Event{Kind: EventFlow, Flow: f})
	}
	g.normalize()
	return g, learned{Edges: describeEdges(g), Skipped: l.Summary().Skipped}
}

func describeEdges(g *Graph) []string {
	var out []string
	for _, e := range g.Edges() {
		var vs []string
		for v, n := range e.Verdicts {
			vs = append(vs, fmt.Sprintf("%s:%d", v, n))
		}
		slices.Sort(vs)
		out = append(out, fmt.Sprintf("%s -> %s %s/%d flows=%d %s", g.peers[e.From].Name(), g.peers[e.To].Name(), e.Proto, e.Port, e.Flows, strings.Join(vs, ",")))
	}
	return out
}

func TestLearnDirection(t *testing.T) {
	req := flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), obs(flowpb.TraceObservationPoint_TO_OVERLAY), node("n1"))
	reqIngress := flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), obs(flowpb.TraceObservationPoint_TO_ENDPOINT), node("n2"), at(time.Millisecond))
	synAck := flow(catalog, frontend, "10.244.2.7", "10.244.1.5", tcp(8080, 41234, "SYN", "ACK"), isReply(true))
	const fc = "shop/frontend -> shop/catalog TCP/8080"
	for _, tc := range []struct {
		name  string
		flows []*flowpb.Flow
		want  learned
	}{
		{
			name:  "both observation points of one connection are one edge and one flow",
			flows: []*flowpb.Flow{req, reqIngress, synAck, reverse(req)},
			want:  learned{Edges: []string{fc + " flows=1 FORWARDED:1"}, Skipped: map[SkipReason]uint64{SkipDuplicate: 1, SkipReply: 2}},
		},
		{
			name:  "a reply alone is turned back into its request, never an edge on the client port",
			flows: []*flowpb.Flow{synAck},
			want:  learned{Edges: []string{fc + " flows=1 FORWARDED:1"}, Skipped: map[SkipReason]uint64{}},
		},
		{
			name: "the deprecated reply field is honoured",
			flows: []*flowpb.Flow{flow(catalog, frontend, "10.244.2.7", "10.244.1.5", tcp(8080, 41234, "ACK"), func(f *flowpb.Flow) {
				f.IsReply = nil
				//lint:ignore SA1019 old captures carry only this field
				f.Reply = true
			})},
			want: learned{Edges: []string{fc + " flows=1 FORWARDED:1"}, Skipped: map[SkipReason]uint64{}},
		},
		{
			name: "unknown direction without SYN is skipped",
			flows: []*flowpb.Flow{flow(catalog, frontend, "10.244.2.7", "10.244.1.5", tcp(8080, 41234, "ACK"), func(f *flowpb.Flow) {
				f.IsReply = nil
			})},
			want: learned{Skipped: map[SkipReason]uint64{SkipUnknownDirection: 1}},
		},
		{
			name: "unknown direction: SYN is a request, SYN-ACK a reply",
			flows: []*flowpb.Flow{
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), func(f *flowpb.Flow) { f.IsReply = nil }),
				flow(catalog, frontend, "10.244.2.7", "10.244.1.5", tcp(8080, 41234, "SYN", "ACK"), func(f *flowpb.Flow) { f.IsReply = nil }),
			},
			want: learned{Edges: []string{fc + " flows=1 FORWARDED:1"}, Skipped: map[SkipReason]uint64{SkipReply: 1}},
		},
		{
			name: "policy-verdict and drop pairs and SYN retransmits are one denied connection",
			flows: []*flowpb.Flow{
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(5), dropped(flowpb.DropReason_POLICY_DENIED)),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(1), dropped(flowpb.DropReason_POLICY_DENIED), at(10*time.Microsecond)),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(5), dropped(flowpb.DropReason_POLICY_DENIED), at(time.Second)),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(1), dropped(flowpb.DropReason_POLICY_DENIED), at(65*time.Second)),
			},
			want: learned{Edges: []string{fc + " flows=1 DROPPED:POLICY_DENIED:1"}, Skipped: map[SkipReason]uint64{SkipDuplicate: 3}},
		},
		{
			name: "POLICY_DENY and POLICY_DENIED are kept apart; other drops are not policy",
			flows: []*flowpb.Flow{
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(1), dropped(flowpb.DropReason_POLICY_DENIED)),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41299, 8080, "SYN"), eventType(1), dropped(flowpb.DropReason_POLICY_DENY)),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41300, 8080, "ACK"), eventType(1), dropped(flowpb.DropReason_CT_MISSING_TCP_ACK_FLAG)),
			},
			want: learned{Edges: []string{fc + " flows=2 DROPPED:POLICY_DENIED:1,DROPPED:POLICY_DENY:1"}, Skipped: map[SkipReason]uint64{SkipNonPolicyDrop: 1}},
		},
		{
			name: "a verdict seen on an already counted connection is counted for the verdict",
			flows: []*flowpb.Flow{
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(5), verdict(flowpb.Verdict_REDIRECTED)),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), obs(flowpb.TraceObservationPoint_TO_PROXY)),
			},
			want: learned{Edges: []string{fc + " flows=1 FORWARDED:1,REDIRECTED:1"}, Skipped: map[SkipReason]uint64{}},
		},
		{
			name: "a client port reused after the window is a new connection",
			flows: []*flowpb.Flow{
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN")),
				flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), at(10*time.Minute)),
			},
			want: learned{Edges: []string{fc + " flows=2 FORWARDED:2"}, Skipped: map[SkipReason]uint64{}},
		},
		{
			name: "ICMP echo reply becomes the echo request edge; errors are skipped",
			flows: []*flowpb.Flow{
				flow(host, catalog, "10.244.2.1", "10.244.2.7", icmp4(8), func(f *flowpb.Flow) { f.IsReply = nil }),
				flow(catalog, host, "10.244.2.7", "10.244.2.1", icmp4(0), func(f *flowpb.Flow) { f.IsReply = nil }),
				flow(catalog, frontend, "10.244.2.7", "10.244.1.5", icmp4(0), isReply(true), at(time.Hour)),
				flow(catalog, frontend, "10.244.2.7", "10.244.1.5", icmp4(3)),
			},
			want: learned{Edges: []string{
				"entity:host -> shop/catalog ICMPv4/8 flows=1 FORWARDED:1",
				"shop/frontend -> shop/catalog ICMPv4/8 flows=1 FORWARDED:1",
			}, Skipped: map[SkipReason]uint64{SkipReply: 1, SkipICMPError: 1}},
		},
		{
			name: "socket-LB traces are not connections",
			flows: []*flowpb.Flow{
				flow(frontend, catalog, "10.244.1.5", "10.96.0.10", tcp(41234, 80), eventType(7), verdict(flowpb.Verdict_TRANSLATED), func(f *flowpb.Flow) { f.Type = flowpb.FlowType_SOCK }),
			},
			want: learned{Skipped: map[SkipReason]uint64{SkipSocketTrace: 1}},
		},
		{
			name: "an endpoint without identity is skipped",
			flows: []*flowpb.Flow{
				flow(&flowpb.Endpoint{}, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN")),
				flow(reserved(0, "unknown"), catalog, "10.244.1.5", "10.244.2.7", tcp(41235, 8080, "SYN")),
			},
			want: learned{Skipped: map[SkipReason]uint64{SkipUnknownPeer: 2}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := learnFlows(t, tc.flows...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("learned (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLearnPeers(t *testing.T) {
	apiserver := reserved(7, "kube-apiserver", "remote-node")
	hostAPI := reserved(1, "host", "kube-apiserver")
	g, got := learnFlows(t,
		flow(frontend, apiserver, "10.244.1.5", "172.18.0.2", tcp(40000, 6443, "SYN")),
		flow(frontend, hostAPI, "10.244.1.5", "172.18.0.3", tcp(40001, 6443, "SYN")),
		flow(frontend, world, "10.244.1.5", "203.0.113.9", tcp(40002, 443, "SYN"), dstNames("api.stripe.com.")),
		flow(frontend, reserved(9, "world-ipv4"), "10.244.1.5", "", tcp(40003, 443, "SYN")),
		flow(frontend, &flowpb.Endpoint{Identity: 16777217, Labels: []string{"cidr:198.51.100.0/24", "reserved:world"}}, "10.244.1.5", "198.51.100.4", tcp(40004, 443, "SYN")),
		flow(host, frontend, "10.244.1.1", "10.244.1.5", tcp(50000, 8080, "SYN")),
		flow(reserved(6, "remote-node"), frontend, "10.0.0.2", "10.244.1.5", tcp(50001, 8080, "SYN")),
		flow(reserved(4, "health"), host, "10.244.1.9", "10.244.1.1", tcp(50002, 4240, "SYN")),
		// A remote pod an old L7 record reports as world, but by name.
		flow(frontend, &flowpb.Endpoint{Identity: 2, Namespace: "shop", PodName: "catalog-5f7b9c6d8f-q4tr9", Labels: []string{"reserved:world"}}, "10.244.1.5", "10.244.2.7", tcp(40005, 8080, "SYN")),
	)
	want := []string{
		"entity:health -> entity:host TCP/4240 flows=1 FORWARDED:1",
		"entity:host -> shop/frontend TCP/8080 flows=1 FORWARDED:1",
		"entity:remote-node -> shop/frontend TCP/8080 flows=1 FORWARDED:1",
		"shop/frontend -> 198.51.100.4 TCP/443 flows=1 FORWARDED:1",
		"shop/frontend -> 203.0.113.9 TCP/443 flows=1 FORWARDED:1",
		"shop/frontend -> entity:kube-apiserver TCP/6443 flows=1 FORWARDED:1",
		"shop/frontend -> entity:kube-apiserver TCP/6443 flows=1 FORWARDED:1",
		"shop/frontend -> entity:world TCP/443 flows=1 FORWARDED:1",
		"shop/frontend -> shop/catalog TCP/8080 flows=1 FORWARDED:1",
	}
	if diff := cmp.Diff(want, sortedCopy(got.Edges)); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	fe := g.peers[peerKeyOf(t, g, "shop/frontend")]
	if diff := cmp.Diff([]string{"k8s:app=frontend"}, fe.Labels); diff != "" {
		t.Errorf("frontend labels: pod-template-hash, namespace and cluster labels must go (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Workload{{Name: "frontend", Kind: "Deployment"}}, fe.Workloads); diff != "" {
		t.Errorf("frontend workload from its pod name (-want +got):\n%s", diff)
	}
	if fe.Cluster != "default" || fe.Namespace != "shop" {
		t.Errorf("frontend cluster/namespace = %q/%q", fe.Cluster, fe.Namespace)
	}
	if diff := cmp.Diff([]string{"kubernetes.io/metadata.name=shop"}, g.NamespaceLabels(NamespaceKey{"default", "shop"})); diff != "" {
		t.Errorf("namespace labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"api.stripe.com"}, g.NamesFor(fe.key, netip.MustParseAddr("203.0.113.9"))); diff != "" {
		t.Errorf("names of 203.0.113.9 (-want +got):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func peerKeyOf(t *testing.T, g *Graph, name string) string {
	t.Helper()
	var found []string
	for k, p := range g.peers {
		if p.Name() == name {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d peers named %s", len(found), name)
	}
	return found[0]
}

func TestLearnL7(t *testing.T) {
	l7 := func(src, dst *flowpb.Endpoint, srcIP, dstIP string, sport, dport uint32, rec *flowpb.Layer7, reply bool) *flowpb.Flow {
		return flow(src, dst, srcIP, dstIP, udp(sport, dport), isReply(reply), eventType(129), func(f *flowpb.Flow) {
			f.Type = flowpb.FlowType_L7
			f.L7 = rec
			if dport == 8080 || sport == 8080 {
				tcp(sport, dport)(f)
			}
		})
	}
	dnsReq := &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{Query: "API.Stripe.com.", Qtypes: []string{"A"}}}}
	dnsResp := &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{Query: "api.stripe.com.", Ips: []string{"203.0.113.9"}, Qtypes: []string{"A"}}}}
	nx := &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{Query: "nope.example.", Rcode: 3, Ips: []string{"203.0.113.10"}}}}
	httpReq := func(url string) *flowpb.Layer7 {
		return &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Method: "GET", Url: url}}}
	}
	httpResp := &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Code: 200, Method: "GET", Url: "http://catalog:8080/products"}}}
	g, got := learnFlows(t,
		l7(frontend, coredns, "10.244.1.5", "10.244.3.2", 53001, 53, dnsReq, false),
		l7(coredns, frontend, "10.244.3.2", "10.244.1.5", 53, 53001, dnsResp, true),
		l7(coredns, frontend, "10.244.3.2", "10.244.1.5", 53, 53002, nx, true),
		l7(frontend, catalog, "10.244.1.5", "10.244.2.7", 41000, 8080, httpReq("http://catalog:8080/products?page=2"), false),
		l7(frontend, catalog, "10.244.1.5", "10.244.2.7", 41000, 8080, httpReq("http://catalog:8080/products"), false),
		l7(frontend, catalog, "10.244.1.5", "10.244.2.7", 41001, 8080, httpReq("http://catalog:8080/products/12"), false),
		l7(catalog, frontend, "10.244.2.7", "10.244.1.5", 8080, 41000, httpResp, true),
	)
	want := []string{
		"shop/frontend -> kube-system/coredns UDP/53 flows=1 FORWARDED:1",
		"shop/frontend -> shop/catalog TCP/8080 flows=2 FORWARDED:2",
	}
	if diff := cmp.Diff(want, got.Edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	fe := peerKeyOf(t, g, "shop/frontend")
	dns := g.edges[EdgeKey{fe, peerKeyOf(t, g, "kube-system/coredns"), ProtoUDP, 53}]
	if diff := cmp.Diff(map[string]uint64{"api.stripe.com": 1}, dns.DNS); diff != "" {
		t.Errorf("DNS queries (-want +got):\n%s", diff)
	}
	http := g.edges[EdgeKey{fe, peerKeyOf(t, g, "shop/catalog"), ProtoTCP, 8080}]
	wantHTTP := map[HTTPRequest]uint64{
		{Method: "GET", Path: "/products", Host: "catalog:8080"}:    2,
		{Method: "GET", Path: "/products/12", Host: "catalog:8080"}: 1,
	}
	if diff := cmp.Diff(wantHTTP, http.HTTP); diff != "" {
		t.Errorf("HTTP requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"api.stripe.com"}, g.NamesFor(fe, netip.MustParseAddr("203.0.113.9"))); diff != "" {
		t.Errorf("DNS answers (-want +got):\n%s", diff)
	}
	if n := g.NamesFor(fe, netip.MustParseAddr("203.0.113.10")); len(n) != 0 {
		t.Errorf("NXDOMAIN answer recorded: %v", n)
	}
}

func TestLearnPolicyAttribution(t *testing.T) {
	g, _ := learnFlows(t, flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"), eventType(5), func(f *flowpb.Flow) {
		f.EgressAllowedBy = []*flowpb.Policy{{Name: "frontend", Namespace: "shop", Kind: "CiliumNetworkPolicy"}}
		f.IngressDeniedBy = []*flowpb.Policy{{Name: "deny-all", Kind: "CiliumClusterwideNetworkPolicy"}}
	}))
	e := g.Edges()[0]
	if diff := cmp.Diff(map[string]struct{}{"CiliumNetworkPolicy:shop/frontend": {}}, e.EgressAllowedBy); diff != "" {
		t.Errorf("egress allowed by (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]struct{}{"CiliumClusterwideNetworkPolicy:deny-all": {}}, e.IngressDeniedBy); diff != "" {
		t.Errorf("ingress denied by (-want +got):\n%s", diff)
	}
}

func TestWorkloadFromPodName(t *testing.T) {
	for pod, want := range map[string]Workload{
		"frontend-7d9c8b6f4d-x2kq9":   {"frontend", "Deployment"},
		"reviews-v1-545db77b95-s6jb8": {"reviews-v1", "Deployment"},
		"redis-0":                     {"redis", "StatefulSet"},
		"web-12":                      {"web", "StatefulSet"},
		"cilium-x2kq9":                {"cilium", ""},
		"standalone":                  {"standalone", "Pod"},
		"":                            {},
	} {
		if got := workloadFromPodName(pod); got != want {
			t.Errorf("workloadFromPodName(%q) = %+v, want %+v", pod, got, want)
		}
	}
}
