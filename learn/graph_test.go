package learn

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/google/go-cmp/cmp"

	"github.com/cnpgen/cnpgen/internal/testseed"
)

// randomFlows returns n flows between a fixed set of endpoints, with
// random ports, verdicts, L7 detail and times.
func randomFlows(r *rand.Rand, n int) []*flowpb.Flow {
	eps := []*flowpb.Endpoint{
		frontend, catalog, coredns, host, world,
		pod("payments", "payments-6c8d9f7b5d-2x4zq", "k8s:app=payments", "k8s:io.cilium.k8s.policy.serviceaccount=payments"),
		pod("payments", "postgres-0", "k8s:app.kubernetes.io/name=postgres"),
		reserved(7, "kube-apiserver", "remote-node"),
		{Identity: 3000, Namespace: "shop", PodName: "cart-5b6c7d8f9g-zz2k4", Labels: []string{"k8s:app=cart", "k8s:io.kubernetes.pod.namespace=shop"}, Workloads: []*flowpb.Workload{{Name: "cart", Kind: "Deployment"}}},
	}
	ips := []string{"10.244.1.5", "10.244.2.7", "10.244.3.2", "10.244.1.1", "203.0.113.9", "10.244.2.9", "10.244.3.4", "172.18.0.2", "10.244.1.8"}
	out := make([]*flowpb.Flow, 0, n)
	for range n {
		a, b := r.IntN(len(eps)), r.IntN(len(eps))
		opts := []opt{at(time.Duration(r.IntN(3600)) * time.Second)}
		switch r.IntN(4) {
		case 0:
			opts = append(opts, udp(uint32(32768+r.IntN(100)), []uint32{53, 123}[r.IntN(2)]))
		case 1:
			opts = append(opts, icmp4([]uint32{8, 0}[r.IntN(2)]), isReply(r.IntN(2) == 0))
		default:
			opts = append(opts, tcp(uint32(32768+r.IntN(100)), []uint32{80, 443, 8080, 5432}[r.IntN(4)], "SYN"))
		}
		switch r.IntN(6) {
		case 0:
			opts = append(opts, eventType(1), dropped([]flowpb.DropReason{flowpb.DropReason_POLICY_DENIED, flowpb.DropReason_POLICY_DENY}[r.IntN(2)]))
		case 1:
			opts = append(opts, eventType(5), verdict(flowpb.Verdict_REDIRECTED), func(f *flowpb.Flow) {
				f.EgressAllowedBy = []*flowpb.Policy{{Name: fmt.Sprintf("p%d", r.IntN(3)), Namespace: "shop"}}
			})
		case 2:
			path := fmt.Sprintf("/items/%d", r.IntN(20))
			opts = append(opts, eventType(129), func(f *flowpb.Flow) {
				f.Type = flowpb.FlowType_L7
				f.L7 = &flowpb.Layer7{Type: flowpb.L7FlowType_REQUEST, Record: &flowpb.Layer7_Http{Http: &flowpb.HTTP{Method: "GET", Url: "http://svc" + path}}}
			})
		case 3:
			name := fmt.Sprintf("host%d.example.com.", r.IntN(5))
			opts = append(opts, eventType(129), isReply(true), func(f *flowpb.Flow) {
				f.Type = flowpb.FlowType_L7
				f.L7 = &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, Record: &flowpb.Layer7_Dns{Dns: &flowpb.DNS{Query: name, Ips: []string{"203.0.113.9"}}}}
			}, dstNames(name))
		}
		out = append(out, flow(eps[a], eps[b], ips[a], ips[b], opts...))
	}
	return out
}

func graphOf(t *testing.T, flows []*flowpb.Flow) *Graph {
	t.Helper()
	g, _ := learnFlows(t, flows...)
	return g
}

func TestMergeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	for i := range 50 {
		a := graphOf(t, randomFlows(r, r.IntN(60)))
		b := graphOf(t, randomFlows(r, r.IntN(60)))
		c := graphOf(t, randomFlows(r, r.IntN(60)))
		merged := func(gs ...*Graph) []byte {
			out := NewGraph()
			for _, g := range gs {
				// Merge through the file format, as cnpgen merge does.
				rt, err := DecodeGraph(g.Encode())
				if err != nil {
					t.Fatal(err)
				}
				out.Merge(rt)
			}
			return out.Encode()
		}
		abc := merged(a, b, c)
		ab := NewGraph()
		ab.Merge(a)
		ab.Merge(b)
		bc := NewGraph()
		bc.Merge(b)
		bc.Merge(c)
		for name, got := range map[string][]byte{
			"(a+b)+c": merged(ab, c),
			"a+(b+c)": merged(a, bc),
			"c+b+a":   merged(c, b, a),
			"b+a+c":   merged(b, a, c),
		} {
			if !bytes.Equal(abc, got) {
				t.Fatalf("round %d: a+b+c and %s differ (-a+b+c +%s):\n%s", i, name, name, cmp.Diff(string(abc), string(got)))
			}
		}
		empty := merged(a, NewGraph())
		if !bytes.Equal(empty, a.Encode()) {
			t.Fatalf("round %d: merging an empty graph changed it:\n%s", i, cmp.Diff(string(a.Encode()), string(empty)))
		}
	}
}

func TestGraphRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 1))
	for range 20 {
		g := graphOf(t, randomFlows(r, 200))
		enc := g.Encode()
		back, err := DecodeGraph(enc)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, enc)
		}
		if diff := cmp.Diff(string(enc), string(back.Encode())); diff != "" {
			t.Fatalf("re-encoded graph differs (-first +second):\n%s", diff)
		}
	}
}

func TestLearnOrderIndependent(t *testing.T) {
	// Learning the same sources in any order gives the same graph.
	r := rand.New(rand.NewPCG(testseed.Seed(t), 2))
	srcs := [][]*flowpb.Flow{randomFlows(r, 300), randomFlows(r, 300), randomFlows(r, 300)}
	learnAll := func(order ...int) []byte {
		g := NewGraph()
		l := NewLearner(g, nil)
		for _, i := range order {
			clear(l.conns)
			for _, pf := range srcs[i] {
				f, err := FromProto(pf)
				if err != nil {
					t.Fatal(err)
				}
				l.Add(Event{Kind: EventFlow, Flow: f})
			}
		}
		return g.Encode()
	}
	want := learnAll(0, 1, 2)
	for _, order := range [][]int{{2, 1, 0}, {1, 0, 2}} {
		if got := learnAll(order...); !bytes.Equal(want, got) {
			t.Errorf("order %v: graph differs:\n%s", order, cmp.Diff(string(want), string(got)))
		}
	}
}

func TestDecodeGraphErrors(t *testing.T) {
	valid := string(graphOf(t, []*flowpb.Flow{flow(frontend, catalog, "10.244.1.5", "10.244.2.7", tcp(41234, 8080, "SYN"))}).Encode())
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not json", "hello", "line 1: invalid character 'h'"},
		{"not a graph", `{"edges": []}`, "not a cnpgen graph"},
		{"newer version", `{"format": "cnpgen-graph", "version": 99}`, "graph format version 99 is newer than this cnpgen reads (1): use a newer cnpgen"},
		{"version zero", `{"format": "cnpgen-graph", "version": 0}`, "graph format version 0 is not valid"},
		{"truncated", valid[:len(valid)/2], "unexpected end of JSON input"},
		{"unknown peer", strings.Replace(valid, `"to":"shop/catalog"`, `"to":"shop/nope"`, 1), `edges[0].to: unknown peer "shop/nope"`},
		{"bad protocol", strings.Replace(valid, `"proto":"TCP"`, `"proto":"TCPX"`, 1), `edges[0].proto: unknown protocol "TCPX"`},
		{"port out of range", strings.Replace(valid, `"port":8080`, `"port":80800`, 1), "line 12: json: cannot unmarshal number 80800 into Go struct field fileEdge.edges.port of type uint16"},
		{"bad label", strings.Replace(valid, `"k8s:app=catalog"`, `"app=catalog"`, 1), `peers[0] (shop/catalog): labels[0]: label "app=catalog" has no source prefix (want source:key=value)`},
		{"unknown field", strings.Replace(valid, `"flows":1`, `"flowz":1`, 1), `line 12: json: unknown field "flowz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeGraph([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestEncodeEmptyGraph(t *testing.T) {
	want := "{\n  \"format\": \"cnpgen-graph\",\n  \"version\": 1,\n  \"namespaces\": [],\n  \"peers\": [],\n  \"edges\": [],\n  \"dns\": []\n}\n"
	if diff := cmp.Diff(want, string(NewGraph().Encode())); diff != "" {
		t.Errorf("empty graph (-want +got):\n%s", diff)
	}
}
