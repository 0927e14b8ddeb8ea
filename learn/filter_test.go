package learn

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

func TestCompileFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		ff   *flowpb.FlowFilter
		want string
	}{
		{"unsupported field", &flowpb.FlowFilter{HttpPath: []string{"/x"}}, `unsupported flow filter field "http_path"`},
		{"bad IP", &flowpb.FlowFilter{SourceIp: []string{"1.2.3"}}, `invalid IP address "1.2.3" in filter`},
		{"bad prefix", &flowpb.FlowFilter{DestinationIp: []string{"1.2.3.4/40"}}, `invalid IP prefix "1.2.3.4/40" in filter`},
		{"empty pod", &flowpb.FlowFilter{SourcePod: []string{""}}, "invalid pod filter: name must not be empty"},
		{"bad selector", &flowpb.FlowFilter{SourceLabel: []string{"a in ("}}, `invalid label filter "a in ("`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileFilter([]*flowpb.FlowFilter{tc.ff}, nil, time.Time{}, time.Time{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTranslateSelector(t *testing.T) {
	for in, want := range map[string]string{
		"app=x":                      "any.app=x",
		"k8s:app=x, !reserved:world": "k8s.app=x, !reserved.world",
		"k8s:app in (a, b),tier":     "k8s.app in (a, b),any.tier",
		"app.kubernetes.io/name!=db": "any.app.kubernetes.io/name!=db",
	} {
		if got, _ := translateSelector(in); got != want {
			t.Errorf("translateSelector(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	f, err := CompileFilter([]*flowpb.FlowFilter{
		{SourcePod: []string{"shop/"}, DestinationLabel: []string{"k8s:app=catalog"}},
		{DestinationIp: []string{"10.244.0.0/16"}, Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}},
	}, []*flowpb.FlowFilter{{SourcePod: []string{"kube-system/"}}}, time.Time{}, time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	fl := &Flow{
		Source:      Endpoint{Namespace: "shop", PodName: "frontend-1", Labels: []string{"k8s:app=frontend"}},
		Destination: Endpoint{Namespace: "shop", PodName: "catalog-1", Labels: []string{"k8s:app=catalog", "k8s:io.kubernetes.pod.namespace=shop"}},
		DstIP:       netip.MustParseAddr("10.244.2.7"),
		Verdict:     flowpb.Verdict_FORWARDED,
	}
	b.ReportAllocs()
	for b.Loop() {
		if !f.Match(fl) {
			b.Fatal("no match")
		}
	}
}
