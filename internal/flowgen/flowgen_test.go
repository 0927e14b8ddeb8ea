package flowgen_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/cilium/api/v1/observer"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cnpgen/cnpgen/internal/flowgen"
	"github.com/cnpgen/cnpgen/learn"
)

func generate(t testing.TB, o flowgen.Options) ([]byte, flowgen.Stats) {
	t.Helper()
	var b bytes.Buffer
	st, err := flowgen.Write(&b, o)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), st
}

func TestDeterministic(t *testing.T) {
	a, _ := generate(t, flowgen.Options{Seed: 7, Flows: 3000})
	b, _ := generate(t, flowgen.Options{Seed: 7, Flows: 3000})
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different output")
	}
	c, _ := generate(t, flowgen.Options{Seed: 8, Flows: 3000})
	if bytes.Equal(a, c) {
		t.Fatal("different seeds, same output")
	}
}

func TestLinesAreHubbleJSON(t *testing.T) {
	out, st := generate(t, flowgen.Options{Seed: 1, Flows: 5000})
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	flows, lost := 0, 0
	for sc.Scan() {
		var r observer.GetFlowsResponse
		if err := (protojson.UnmarshalOptions{}).Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", flows+lost+1, err)
		}
		switch {
		case r.GetFlow() != nil:
			flows++
			if r.GetNodeName() != r.GetFlow().GetNodeName() || !r.GetTime().AsTime().Equal(r.GetFlow().GetTime().AsTime()) {
				t.Fatalf("line %d: envelope differs from flow", flows+lost)
			}
		case r.GetLostEvents() != nil:
			lost++
		}
	}
	if flows != st.Flows || lost != st.LostEvents || flows < 5000 || flows > 5050 {
		t.Errorf("lines: %d flows, %d lost; stats %+v", flows, lost, st)
	}
}

// TestLearnRecoversTopology is the end-to-end check of the learner on the
// demo app: exactly the app's calls, in the right direction, nothing on an
// ephemeral port.
func TestLearnRecoversTopology(t *testing.T) {
	out, _ := generate(t, flowgen.Options{Seed: 3})
	src, err := learn.NewReaderSource("demo", bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	g := learn.NewGraph()
	l := learn.NewLearner(g, nil)
	if err := l.Learn(context.Background(), src, func(ev learn.Event) error { return ev.Err }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range g.Edges() {
		s := fmt.Sprintf("%s -> %s %s/%d", name(g.Peer(e.From)), name(g.Peer(e.To)), e.Proto, e.Port)
		for v := range e.Verdicts {
			if strings.HasPrefix(v, "DROPPED:") {
				s += " denied(" + strings.TrimPrefix(v, "DROPPED:") + ")"
			}
		}
		got = append(got, s)
	}
	var want []string
	for _, c := range flowgen.Topology() {
		want = append(want, c.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("learned edges (-topology +learned):\n%s", diff)
	}
	if s := l.Summary(); s.Lost == 0 {
		t.Errorf("lost events not counted: %+v", s)
	}
}

func name(p *learn.Peer) string {
	if p.Kind == learn.PeerEntity {
		return "entity:" + p.Entity
	}
	return p.Name()
}

func BenchmarkWrite(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := flowgen.Write(io.Discard, flowgen.Options{Seed: 1, Flows: 100_000}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(100_000, "flows/op")
}
