package synth_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"

	"github.com/cnpgen/cnpgen/learn"
	"github.com/cnpgen/cnpgen/synth"
)

// largeGraph learns nWorkloads workloads in namespaces of 100, each
// calling edgesPer others on a few ports.
func largeGraph(b *testing.B, nWorkloads, edgesPer int) *learn.Graph {
	g := learn.NewGraph()
	l := learn.NewLearner(g, nil)
	ep := func(i int) learn.Endpoint {
		ns := fmt.Sprintf("team-%03d", i/100)
		return learn.Endpoint{Identity: uint32(1000 + i), Namespace: ns, PodName: fmt.Sprintf("svc-%05d-0", i),
			Labels: []string{fmt.Sprintf("k8s:app.kubernetes.io/name=svc-%05d", i), "k8s:io.kubernetes.pod.namespace=" + ns}}
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	for i := range nWorkloads {
		for j := 1; j <= edgesPer; j++ {
			peer := (i + j*j*7) % nWorkloads
			if j%3 != 0 {
				peer = i/100*100 + (i+j)%100 // mostly within the namespace
			}
			f := &learn.Flow{Time: t0.Add(time.Duration(n) * time.Millisecond), Verdict: flowpb.Verdict_FORWARDED, EventType: 4, Reply: learn.ReplyNo,
				Source: ep(i), Destination: ep(peer), SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("10.0.0.2"),
				Proto: learn.ProtoTCP, SrcPort: 40000, DstPort: uint16(8000 + j%4), TCPFlags: learn.TCPSyn}
			l.Add(learn.Event{Kind: learn.EventFlow, Flow: f})
			n++
		}
	}
	return g
}

var benchWorkloads = 20_000

// BenchmarkSynthLarge synthesises 20k workloads and about 200k edges,
// every policy validated, and reports edges/s.
func BenchmarkSynthLarge(b *testing.B) {
	g := largeGraph(b, benchWorkloads, 11)
	_, edges := g.Len()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	iters := 0
	for b.Loop() {
		res, err := synth.Synthesize(g, synth.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Policies) != benchWorkloads {
			b.Fatalf("%d policies", len(res.Policies))
		}
		iters++
	}
	per := time.Since(start) / time.Duration(iters)
	b.ReportMetric(float64(edges), "edges")
	b.ReportMetric(float64(edges)/per.Seconds(), "edges/s")
}
