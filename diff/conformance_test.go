package diff

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cnpgen/cnpgen/learn"
)

// TestConformance runs every case of testdata/conformance/cilium-l3l4:
// policies, flows and the verdicts Cilium v1.20.2's own policy engine
// gave for them. Every flow must match, on both ends.
func TestConformance(t *testing.T) {
	dirs, err := filepath.Glob("../testdata/conformance/cilium-l3l4/case-*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no conformance cases: %v", err)
	}
	total, failed := 0, 0
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ps, err := LoadPaths([]string{filepath.Join(dir, "policies.yaml")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := NewEvaluator(ps, Options{ClusterName: "default"})
			if err != nil {
				t.Fatal(err)
			}
			flows := readFlows(t, filepath.Join(dir, "flows.jsonl"))
			want := readExpected(t, filepath.Join(dir, "expected.jsonl"))
			if len(flows) != len(want) {
				t.Fatalf("%d flows, %d verdicts", len(flows), len(want))
			}
			for i, f := range flows {
				total++
				req, skip := RequestFromFlow(f)
				if skip != "" {
					t.Errorf("flow %d skipped: %s", i+1, skip)
					failed++
					continue
				}
				v := ev.Evaluate(req)
				got := expected{Allowed: v.Allowed, Egress: string(v.Egress.Decision), Ingress: string(v.Ingress.Decision)}
				if got != want[i] {
					failed++
					t.Errorf("flow %d (%s → %s %s/%d): got %+v (egress %s, ingress %s), want %+v",
						i+1, f.Source.Labels, f.Destination.Labels, f.Proto, f.DstPort, got, v.Egress.Ref(), v.Ingress.Ref(), want[i])
				}
			}
		})
	}
	t.Logf("%d flows, %d mismatches", total, failed)
}

type expected struct {
	Allowed bool   `json:"allowed"`
	Egress  string `json:"egress"`
	Ingress string `json:"ingress"`
}

func readFlows(t *testing.T, path string) []*learn.Flow {
	t.Helper()
	src, err := learn.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []*learn.Flow
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != learn.EventFlow {
			t.Fatalf("%s: not a flow: %v", ev.Pos, ev.Err)
		}
		out = append(out, ev.Flow)
	}
}

func readExpected(t *testing.T, path string) []expected {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expected
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e expected
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
