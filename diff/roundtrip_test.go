package diff

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/cnpgen/cnpgen/internal/flowgen"
	"github.com/cnpgen/cnpgen/internal/testseed"
	"github.com/cnpgen/cnpgen/learn"
	"github.com/cnpgen/cnpgen/synth"
)

// The promise of synth, checked with the evaluator: every learned edge is
// allowed by the synthesised policies, edges seen only as dropped by
// policy are not, and for every pair of observed workloads and every port
// observed on the server, what was not learned is denied.

func TestRoundTripRandomGraphs(t *testing.T) {
	seed := testseed.Seed(t)
	for i := range 20 {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		g := learn.NewGraph()
		l := learn.NewLearner(g, nil)
		for _, f := range randomFlows(r, 50+r.IntN(300)) {
			l.Add(learn.Event{Kind: learn.EventFlow, Flow: f})
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRoundTrip(t, g) })
	}
}

func TestRoundTripCaptures(t *testing.T) {
	files, _ := filepath.Glob("../testdata/flows/*/*.json*")
	if len(files) == 0 {
		t.Fatal("no captures")
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			g := learn.NewGraph()
			src, err := learn.OpenFile(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if err := learn.NewLearner(g, nil).Learn(context.Background(), src, nil); err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, g)
		})
	}
}

func TestRoundTripDemo(t *testing.T) {
	g := demoGraph(t, 1, 5000)
	checkRoundTrip(t, g)
}

// demoGraph learns a demo capture of the given seed and size.
func demoGraph(t *testing.T, seed int64, flows int) *learn.Graph {
	t.Helper()
	var buf bytes.Buffer
	if _, err := flowgen.Write(&buf, flowgen.Options{Seed: seed, Flows: flows}); err != nil {
		t.Fatal(err)
	}
	src, err := learn.NewReaderSource("demo", &buf)
	if err != nil {
		t.Fatal(err)
	}
	g := learn.NewGraph()
	if err := learn.NewLearner(g, nil).Learn(context.Background(), src, nil); err != nil {
		t.Fatal(err)
	}
	return g
}

func checkRoundTrip(t *testing.T, g *learn.Graph) {
	t.Helper()
	res, err := synth.Synthesize(g, synth.Options{IncludeSystem: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := synth.YAML(res.Policies)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Load("synth.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	// Each end is decided by the agent of its own cluster, which limits
	// peers to its cluster unless a selector names another.
	evs := map[string]*Evaluator{}
	for _, p := range g.Peers() {
		c := p.Cluster
		if c == "" {
			c = "default"
		}
		if evs[c] == nil {
			if evs[c], err = NewEvaluator(ps, Options{ClusterName: c}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ev := &multiCluster{evs: evs}
	gi := NewGraphIdentities(g, "")
	// A pod Hubble named without its labels cannot be selected; synth
	// reports its edges instead of writing rules.
	unnamed := func(p *learn.Peer) bool { return p.Kind == learn.PeerWorkload && len(p.Labels) == 0 }
	learned := map[learn.EdgeKey]bool{}
	type port struct {
		proto learn.Protocol
		port  uint16
	}
	serverPorts := map[string]map[port]bool{}
	checked := 0
	for _, e := range g.Edges() {
		learned[e.EdgeKey] = true
		if p := g.Peer(e.To); p.Kind == learn.PeerWorkload {
			if serverPorts[e.To] == nil {
				serverPorts[e.To] = map[port]bool{}
			}
			serverPorts[e.To][port{e.Proto, e.Port}] = true
		}
		if unnamed(g.Peer(e.From)) || unnamed(g.Peer(e.To)) {
			continue
		}
		req := gi.EdgeRequest(e)
		v := ev.Evaluate(req)
		needed, observed := neededEdge(e)
		switch {
		case !needed:
			continue
		case observed == "dropped" && v.Allowed:
			t.Errorf("%s: only seen dropped by policy, but allowed (egress %s, ingress %s)", EdgeName(g, e), v.Egress.Ref(), v.Ingress.Ref())
		case observed == "allowed" && !v.Allowed:
			t.Errorf("%s: learned, but denied (egress %s %s, ingress %s %s)\n%s", EdgeName(g, e), v.Egress.Decision, v.Egress.Ref(), v.Ingress.Decision, v.Ingress.Ref(), data)
		}
		checked++
	}
	var workloads []*learn.Peer
	for _, p := range g.Peers() {
		if p.Kind == learn.PeerWorkload && !unnamed(p) {
			workloads = append(workloads, p)
		}
	}
	denied := 0
	for _, a := range workloads {
		for _, b := range workloads {
			for pp := range serverPorts[b.Key()] {
				k := learn.EdgeKey{From: a.Key(), To: b.Key(), Proto: pp.proto, Port: pp.port}
				if learned[k] {
					continue
				}
				if isDNSServer(g, b) && pp.port == 53 {
					// synth allows DNS on 53/UDP and 53/TCP to the DNS
					// server a workload uses, whichever was seen.
					continue
				}
				req := &Request{Src: gi.Peer(a), Dst: gi.Peer(b), Proto: pp.proto, Port: pp.port}
				if v := ev.Evaluate(req); v.Allowed {
					t.Errorf("%s → %s %s: not learned, but allowed (egress %s, ingress %s)", a.Name(), b.Name(), PortName(pp.proto, pp.port), v.Egress.Ref(), v.Ingress.Ref())
				}
				denied++
			}
		}
	}
	t.Logf("%d learned edges allowed, %d unlearned workload pairs denied, %d policies", checked, denied, len(ps))
	if checked == 0 {
		t.Error("no edge checked")
	}
}

// multiCluster decides each end with the evaluator of its cluster.
type multiCluster struct{ evs map[string]*Evaluator }

func (m *multiCluster) Evaluate(req *Request) Verdict {
	cluster := func(id *Identity) string {
		if v, ok := id.Labels.Lookup("k8s:" + labelPolicyCluster); ok {
			return v
		}
		return "default"
	}
	egress := m.evs[cluster(req.Src)].Evaluate(req).Egress
	ingress := m.evs[cluster(req.Dst)].Evaluate(req).Ingress
	return Verdict{Allowed: egress.Decision != Denied && ingress.Decision != Denied, Egress: egress, Ingress: ingress}
}

func isDNSServer(g *learn.Graph, p *learn.Peer) bool {
	for _, e := range g.Edges() {
		if e.To == p.Key() && e.Port == 53 {
			return true
		}
	}
	return false
}

// randomFlows makes connection-opening flows between random workloads,
// entities and external addresses.
func randomFlows(r *rand.Rand, n int) []*learn.Flow {
	type ep struct {
		e     learn.Endpoint
		ip    netip.Addr
		names []string
	}
	var eps []ep
	nss := []string{"shop", "payments", "kube-system", "data"}
	apps := []string{"web", "api", "db", "cache", "worker", "auth"}
	used := map[string]bool{}
	for i := range 3 + r.IntN(8) {
		ns := nss[r.IntN(len(nss))]
		app := apps[r.IntN(len(apps))]
		// One workload per app and namespace: two workloads whose labels
		// differ only in a label the other lacks cannot be told apart
		// by matchLabels, and synth reports them rather than guess.
		if used[ns+"/"+app] {
			continue
		}
		used[ns+"/"+app] = true
		lbls := []string{
			"k8s:app=" + app,
			"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + ns,
			"k8s:io.cilium.k8s.policy.cluster=default",
			"k8s:io.cilium.k8s.policy.serviceaccount=" + app,
			"k8s:io.kubernetes.pod.namespace=" + ns,
		}
		if r.IntN(3) == 0 {
			lbls = append(lbls, "k8s:tier="+[]string{"front", "back"}[r.IntN(2)])
		}
		if r.IntN(4) == 0 {
			lbls = append(lbls, "k8s:version=v"+strconv.Itoa(1+r.IntN(2)))
		}
		eps = append(eps, ep{e: learn.Endpoint{Identity: uint32(1000 + i), Namespace: ns, PodName: fmt.Sprintf("%s-%d", app, i), Labels: sortedStrings(lbls), Workloads: []learn.Workload{{Name: app, Kind: "Deployment"}}},
			ip: netip.AddrFrom4([4]byte{10, 244, byte(i), 5})})
	}
	eps = append(eps,
		ep{e: learn.Endpoint{Identity: 1, Labels: []string{"reserved:host"}}, ip: netip.MustParseAddr("172.18.0.3")},
		ep{e: learn.Endpoint{Identity: 6, Labels: []string{"reserved:remote-node"}}, ip: netip.MustParseAddr("172.18.0.4")},
		ep{e: learn.Endpoint{Identity: 7, Labels: []string{"reserved:kube-apiserver", "reserved:remote-node"}}, ip: netip.MustParseAddr("172.18.0.2")},
		ep{e: learn.Endpoint{Identity: 2, Labels: []string{"reserved:world"}}, ip: netip.MustParseAddr("203.0.113.7")},
		ep{e: learn.Endpoint{Identity: 2, Labels: []string{"reserved:world"}}, ip: netip.MustParseAddr("198.51.100.9"), names: []string{"api.example.com"}},
	)
	nWorkloads := len(eps) - 5
	ports := []uint16{80, 443, 5432, 6379, 8080, 9090}
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	out := make([]*learn.Flow, 0, n)
	for i := range n {
		src := eps[r.IntN(len(eps))]
		dst := eps[r.IntN(len(eps))]
		// Entities and the world only start connections to workloads.
		if src.e.Namespace == "" {
			dst = eps[r.IntN(nWorkloads)]
		}
		f := &learn.Flow{
			Time: start.Add(time.Duration(i) * time.Second), Verdict: flowpb.Verdict_FORWARDED,
			EventType: 4, Type: flowpb.FlowType_L3_L4, Reply: learn.ReplyNo,
			Source: src.e, Destination: dst.e, SrcIP: src.ip, DstIP: dst.ip,
			SrcPort: uint16(30000 + r.IntN(30000)), DstPort: ports[r.IntN(len(ports))],
			TCPFlags: learn.TCPSyn, DestinationNames: dst.names,
		}
		switch r.IntN(6) {
		case 0:
			f.Proto = learn.ProtoUDP
		case 1:
			f.Proto, f.ICMPType, f.SrcPort, f.DstPort = learn.ProtoICMPv4, 8, 0, 0
		default:
			f.Proto = learn.ProtoTCP
		}
		out = append(out, f)
	}
	return out
}

func sortedStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// TestReportIndependentOfInputOrder: the same policies and graph give a
// byte-identical report whatever order the policies came in.
func TestReportIndependentOfInputOrder(t *testing.T) {
	g := demoGraph(t, 3, 3000)
	res, err := synth.Synthesize(g, synth.Options{IncludeSystem: true})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := synth.YAML(res.Policies)
	synthesised, err := Load("synth.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	live, err := LoadPaths([]string{"../testdata/demo/live-policies.yaml"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	all := append(live, synthesised...)
	report := func(ps []*Policy) []byte {
		ev, err := NewEvaluator(ps, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := Analyze(ev, g, AnalyzeOptions{}).Write(&b, "json"); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	want := report(all)
	r := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	for range 5 {
		shuffled := append([]*Policy(nil), all...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := report(shuffled); !bytes.Equal(got, want) {
			t.Fatalf("report depends on policy order:\n%s\nvs\n%s", got, want)
		}
	}
}
