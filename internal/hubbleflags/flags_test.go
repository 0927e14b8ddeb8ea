package hubbleflags

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/cnpgen/cnpgen/learn"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func parse(t *testing.T, args ...string) (*learn.Filter, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f := Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.Filter(now)
}

func ep(ns, pod string, labels ...string) learn.Endpoint {
	return learn.Endpoint{Namespace: ns, PodName: pod, Labels: labels}
}

var (
	frontend = ep("shop", "frontend-7d9c8b6f4d-x2kq9", "k8s:app=frontend", "k8s:io.kubernetes.pod.namespace=shop")
	postgres = ep("payments", "postgres-0", "k8s:app.kubernetes.io/name=postgres", "k8s:io.kubernetes.pod.namespace=payments")
	coredns  = ep("kube-system", "coredns-558bd4d5db-9grjv", "k8s:k8s-app=kube-dns", "k8s:io.kubernetes.pod.namespace=kube-system")
	world    = learn.Endpoint{Labels: []string{"reserved:world"}}
)

func fl(src, dst learn.Endpoint, srcIP, dstIP string, v flowpb.Verdict, at time.Time) *learn.Flow {
	return &learn.Flow{Source: src, Destination: dst, SrcIP: netip.MustParseAddr(srcIP), DstIP: netip.MustParseAddr(dstIP), Verdict: v, Time: at}
}

var (
	toDB    = fl(frontend, postgres, "10.244.1.5", "10.244.2.7", flowpb.Verdict_FORWARDED, now.Add(-time.Minute))
	toDNS   = fl(frontend, coredns, "10.244.1.5", "10.244.3.2", flowpb.Verdict_FORWARDED, now.Add(-10*time.Minute))
	dropped = fl(postgres, frontend, "10.244.2.7", "10.244.1.5", flowpb.Verdict_DROPPED, now.Add(-2*time.Hour))
	out     = fl(frontend, world, "10.244.1.5", "203.0.113.9", flowpb.Verdict_FORWARDED, now)
	all     = map[string]*learn.Flow{"toDB": toDB, "toDNS": toDNS, "dropped": dropped, "out": out}
)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // names of flows that pass, sorted
	}{
		{"no flags", nil, []string{"dropped", "out", "toDB", "toDNS"}},
		{"namespace matches either side", []string{"--namespace", "payments"}, []string{"dropped", "toDB"}},
		{"two namespaces OR", []string{"-n", "payments", "-n", "kube-system"}, []string{"dropped", "toDB", "toDNS"}},
		{"from and to namespace AND", []string{"--from-namespace", "shop", "--to-namespace", "payments"}, []string{"toDB"}},
		{"not namespace excludes both sides", []string{"--not", "--namespace", "kube-system"}, []string{"dropped", "out", "toDB"}},
		{"not verdict", []string{"--not", "--verdict", "DROPPED"}, []string{"out", "toDB", "toDNS"}},
		{"verdict is case-insensitive", []string{"--verdict", "dropped"}, []string{"dropped"}},
		{"pod prefix with namespace", []string{"--pod", "payments/postgres"}, []string{"dropped", "toDB"}},
		{"pod without namespace means default", []string{"--pod", "postgres"}, nil},
		{"pod with --namespace", []string{"--namespace", "payments", "--pod", "postgres"}, []string{"dropped", "toDB"}},
		{"to-pod", []string{"--to-pod", "kube-system/coredns"}, []string{"toDNS"}},
		{"label any source", []string{"--label", "app=frontend"}, []string{"dropped", "out", "toDB", "toDNS"}},
		{"to-label k8s source", []string{"--to-label", "k8s:k8s-app=kube-dns"}, []string{"toDNS"}},
		{"reserved label", []string{"--to-label", "reserved:world"}, []string{"out"}},
		{"set-based selector", []string{"--to-label", "app.kubernetes.io/name in (postgres, mysql)"}, []string{"toDB"}},
		{"wrong source does not match", []string{"--to-label", "reserved:app.kubernetes.io/name=postgres"}, nil},
		{"not label", []string{"--not", "--to-label", "reserved:world"}, []string{"dropped", "toDB", "toDNS"}},
		{"ip either side", []string{"--ip", "10.244.2.7"}, []string{"dropped", "toDB"}},
		{"to-ip CIDR", []string{"--to-ip", "203.0.113.0/24"}, []string{"out"}},
		{"since relative", []string{"--since", "30m"}, []string{"out", "toDB", "toDNS"}},
		{"until absolute", []string{"--until", "2026-11-22T11:55:00Z"}, []string{"dropped", "toDNS"}},
		{"since and until", []string{"--since", "1h", "--until", "5m"}, []string{"toDNS"}},
		{"whitelist and blacklist", []string{"--from-namespace", "shop", "--not", "--to-ip", "203.0.113.0/24"}, []string{"toDB", "toDNS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range []string{"dropped", "out", "toDB", "toDNS"} {
				if f.Match(all[n]) {
					got = append(got, n)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("matching flows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFlagsBuildHubbleFilters(t *testing.T) {
	// The same FlowFilters `hubble observe --print-raw-filters` shows.
	f, err := parse(t, "--namespace", "kube-system", "--not", "--namespace", "kube-system")
	if err != nil {
		t.Fatal(err)
	}
	want := []*flowpb.FlowFilter{{SourcePod: []string{"kube-system/"}}, {DestinationPod: []string{"kube-system/"}}}
	if diff := cmp.Diff(want, f.Whitelist(), protocmp.Transform()); diff != "" {
		t.Errorf("whitelist (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.Blacklist(), protocmp.Transform()); diff != "" {
		t.Errorf("blacklist (-want +got):\n%s", diff)
	}
	f, err = parse(t, "--from-namespace", "a", "--to-namespace", "b")
	if err != nil {
		t.Fatal(err)
	}
	want = []*flowpb.FlowFilter{{SourcePod: []string{"a/"}, DestinationPod: []string{"b/"}}}
	if diff := cmp.Diff(want, f.Whitelist(), protocmp.Transform()); diff != "" {
		t.Errorf("from/to namespace collapse into one filter (-want +got):\n%s", diff)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--not", "--not", "--ip", "1.1.1.1"}, "consecutive --not statements"},
		{[]string{"--not"}, "--not must be followed by a filter flag"},
		{[]string{"--ip", "10.0.0.300"}, `--ip "10.0.0.300": invalid IP address or CIDR`},
		{[]string{"--verdict", "MAYBE"}, "invalid --verdict value: MAYBE"},
		{[]string{"--ip", "1.1.1.1", "--from-ip", "2.2.2.2"}, "filters --from-ip and --ip cannot be combined"},
		{[]string{"--to-pod", "x", "--namespace", "a"}, "filters --to-pod and --namespace cannot be combined"},
		{[]string{"--since", "yesterday"}, `--since "yesterday": not a duration`},
		{[]string{"--label", "app in (a"}, `invalid label filter "app in (a"`},
		{[]string{"--namespace", "a", "--pod", "b/x"}, `namespace conflict: "a" does not contain "b/x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parse(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
