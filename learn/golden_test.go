package learn

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// learnFile learns one file into a new graph.
func learnFile(t *testing.T, path string) (*Graph, Summary) {
	t.Helper()
	src, err := OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	g := NewGraph()
	l := NewLearner(g, nil)
	if err := l.Learn(context.Background(), src, func(ev Event) error { return ev.Err }); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return g, l.Summary()
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (-want +got):\n%s", golden, cmp.Diff(string(want), string(got)))
	}
}

// TestGoldenRealCaptures learns every real capture in testdata/flows. The
// golden graphs were checked by hand; see TestBookinfo for the facts that
// matter most.
func TestGoldenRealCaptures(t *testing.T) {
	files, err := filepath.Glob("../testdata/flows/*/*.json*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d capture files found", len(files))
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f)) + "-" + strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		t.Run(name, func(t *testing.T) {
			g, sum := learnFile(t, f)
			if sum.Used == 0 {
				t.Errorf("no flow used: %+v", sum)
			}
			checkGolden(t, filepath.Join("testdata", "golden", name+".graph.json"), g.Encode())
		})
	}
}

// TestBookinfo checks the facts of the kind bookinfo capture (Cilium
// 1.10.5) that every generator we tried got wrong.
func TestBookinfo(t *testing.T) {
	g := NewGraph()
	for _, f := range []string{"basic-sample-400-tcp-flows.json", "basic-sample-400-udp-flows.json"} {
		part, _ := learnFile(t, filepath.Join("../testdata/flows/hubble-otel", f))
		g.Merge(part)
	}
	edges := map[string]*Edge{}
	for _, e := range g.Edges() {
		from, to := g.Peer(e.From), g.Peer(e.To)
		edges[from.Name()+" -> "+to.Name()+" "+e.Proto.String()+"/"+strconv.Itoa(int(e.Port))] = e
		if e.Port >= 32768 && e.Proto != ProtoICMPv4 {
			t.Errorf("edge on an ephemeral port: %s -> %s %s/%d", from.Name(), to.Name(), e.Proto, e.Port)
		}
	}
	for _, want := range []string{
		"bookinfo/productpage-v1 -> bookinfo/reviews-v1 TCP/9080",
		"bookinfo/productpage-v1 -> bookinfo/reviews-v2 TCP/9080",
		"bookinfo/productpage-v1 -> bookinfo/reviews-v3 TCP/9080",
		"bookinfo/productpage-v1 -> bookinfo/details-v1 TCP/9080",
		"bookinfo/reviews-v2 -> bookinfo/ratings-v1 TCP/9080",
		"bookinfo/reviews-v3 -> bookinfo/ratings-v1 TCP/9080",
		"bookinfo/productpage-v1 -> kube-system/coredns UDP/53",
	} {
		if edges[want] == nil {
			t.Errorf("missing edge %s", want)
		}
	}
	for name := range edges {
		if strings.HasPrefix(name, "bookinfo/reviews") && strings.Contains(name, "-> bookinfo/productpage") {
			t.Errorf("inverted edge %s", name)
		}
	}
	dns := edges["bookinfo/productpage-v1 -> kube-system/coredns UDP/53"]
	for _, n := range []string{"details.bookinfo.svc.cluster.local", "reviews.bookinfo.svc.cluster.local"} {
		if dns.DNS[n] == 0 {
			t.Errorf("productpage's DNS query for %s not recorded: %v", n, dns.DNS)
		}
	}
	for _, p := range g.Peers() {
		for _, l := range p.Labels {
			if strings.Contains(l, "pod-template-hash") || strings.Contains(l, "io.kubernetes.pod.namespace") {
				t.Errorf("peer %s keeps label %s", p.Name(), l)
			}
		}
	}
}

// TestConformanceFlowsLearn learns the flows of the conformance corpus
// (Cilium 1.20-shaped, strict protojson): none is malformed, none skipped
// for lack of identity or direction.
func TestConformanceFlowsLearn(t *testing.T) {
	files, _ := filepath.Glob("../testdata/conformance/cilium-l3l4/case-*/flows.jsonl")
	if len(files) < 100 {
		t.Fatalf("%d conformance cases found", len(files))
	}
	for _, f := range files {
		_, sum := learnFile(t, f)
		for _, r := range []SkipReason{SkipMalformed, SkipUnknownPeer, SkipUnknownDirection} {
			if sum.Skipped[r] > 0 {
				t.Errorf("%s: %d flows skipped as %s", f, sum.Skipped[r], r)
			}
		}
	}
}
