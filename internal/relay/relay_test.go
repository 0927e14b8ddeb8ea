package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/api/v1/observer"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cnpgen/cnpgen/internal/flowgen"
	"github.com/cnpgen/cnpgen/internal/relay"
	"github.com/cnpgen/cnpgen/internal/relaytest"
	"github.com/cnpgen/cnpgen/internal/testseed"
	"github.com/cnpgen/cnpgen/learn"
)

// capture is the demo app plus the real bookinfo capture, sorted by time.
func capture(t testing.TB) []*observer.GetFlowsResponse {
	var b bytes.Buffer
	if _, err := flowgen.Write(&b, flowgen.Options{Seed: 5, Flows: 3000}); err != nil {
		t.Fatal(err)
	}
	rs := relaytest.Parse(t, b.Bytes())
	return rs
}

func countFlows(rs []*observer.GetFlowsResponse) uint64 {
	n := uint64(0)
	for _, r := range rs {
		if r.GetFlow() != nil {
			n++
		}
	}
	return n
}

func learnFile(t *testing.T, rs []*observer.GetFlowsResponse) ([]byte, learn.Summary) {
	t.Helper()
	src, err := learn.NewReaderSource("file", bytes.NewReader(relaytest.Encode(t, rs)))
	if err != nil {
		t.Fatal(err)
	}
	g := learn.NewGraph()
	l := learn.NewLearner(g, nil)
	if err := l.Learn(context.Background(), src, nil); err != nil {
		t.Fatal(err)
	}
	return g.Encode(), l.Summary()
}

func learnRelay(t *testing.T, addr string, o relay.ConnOptions, so relay.SourceOptions) ([]byte, learn.Summary, *relay.Source) {
	t.Helper()
	o.Server = addr
	c, _, err := relay.Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	so.MinBackoff, so.MaxBackoff = time.Millisecond, 5*time.Millisecond
	src := c.Source(so)
	g := learn.NewGraph()
	l := learn.NewLearner(g, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Learn(ctx, src, nil); err != nil {
		t.Fatal(err)
	}
	return g.Encode(), l.Summary(), src
}

func TestRelayEqualsFile(t *testing.T) {
	rs := capture(t)
	want, _ := learnFile(t, rs)
	addr := relaytest.Start(t, &relaytest.Server{Responses: rs}, nil)
	got, _, _ := learnRelay(t, addr, relay.ConnOptions{}, relay.SourceOptions{MaxFlows: countFlows(rs)})
	if !bytes.Equal(want, got) {
		t.Errorf("graph from the relay differs from the file's:\n%s", cmp.Diff(string(want), string(got)))
	}
}

func TestRelayResumesAfterCuts(t *testing.T) {
	rs := capture(t)
	want, _ := learnFile(t, rs)
	r := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	for round := range 5 {
		var cuts []int
		for range 1 + r.IntN(6) {
			cuts = append(cuts, r.IntN(len(rs)/3))
		}
		srv := &relaytest.Server{Responses: rs, Cuts: cuts}
		addr := relaytest.Start(t, srv, nil)
		got, _, src := learnRelay(t, addr, relay.ConnOptions{}, relay.SourceOptions{MaxFlows: countFlows(rs)})
		if !bytes.Equal(want, got) {
			t.Fatalf("round %d, cuts %v: graph differs:\n%s", round, cuts, cmp.Diff(string(want), string(got)))
		}
		// A later cut may fall past the end of a resumed, shorter stream.
		if src.Reconnects < 1 || src.Reconnects > len(cuts) {
			t.Errorf("round %d: %d reconnects for cuts %v", round, src.Reconnects, cuts)
		}
		reqs := srv.Requests()
		if last := reqs[len(reqs)-1]; len(cuts) > 0 && last.GetSince() == nil {
			t.Errorf("round %d: resumed without since: %v", round, last)
		}
	}
}

func TestRelayRequest(t *testing.T) {
	f, err := learn.CompileFilter([]*flowpb.FlowFilter{{SourcePod: []string{"shop/"}}}, []*flowpb.FlowFilter{{DestinationPod: []string{"kube-system/"}}},
		time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rs := capture(t)
	srv := &relaytest.Server{Responses: rs}
	addr := relaytest.Start(t, srv, nil)
	_, sum, _ := learnRelay(t, addr, relay.ConnOptions{}, relay.SourceOptions{Filter: f, MaxFlows: 50})
	req := srv.Requests()[0]
	if !req.GetFollow() || req.GetSince() == nil || len(req.GetWhitelist()) != 1 || len(req.GetBlacklist()) != 1 {
		t.Fatalf("request %v", req)
	}
	if got := req.GetWhitelist()[0]; got.GetSourcePod()[0] != "shop/" || len(got.GetEventType()) != 4 {
		t.Errorf("whitelist %v: want the filter plus the event types learning needs", got)
	}
	if sum.Flows != 50 {
		t.Errorf("--max-flows 50 gave %d flows", sum.Flows)
	}
}

func TestRelayLostEventsNodeErrorsAndGarbage(t *testing.T) {
	rs := capture(t)[:200]
	bad := &observer.GetFlowsResponse{ResponseTypes: &observer.GetFlowsResponse_Flow{Flow: &flowpb.Flow{
		Time: rs[100].GetTime(), EventType: &flowpb.CiliumEventType{Type: 4},
		L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{DestinationPort: 70000}}},
	}}}
	lost := &observer.GetFlowsResponse{ResponseTypes: &observer.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{NumEventsLost: 7}}}
	withExtras := append([]*observer.GetFlowsResponse{}, rs[:100]...)
	withExtras = append(withExtras, bad, lost)
	withExtras = append(withExtras, rs[100:]...)
	addr := relaytest.Start(t, &relaytest.Server{Responses: withExtras}, nil)
	_, sum, _ := learnRelay(t, addr, relay.ConnOptions{}, relay.SourceOptions{MaxFlows: countFlows(withExtras)})
	if sum.Lost != 7 || sum.Skipped[learn.SkipMalformed] != 1 {
		t.Errorf("summary %+v: want 7 lost, 1 malformed", sum)
	}
}

func TestRelayTLS(t *testing.T) {
	dir := t.TempDir()
	certs := relaytest.NewCerts(t, dir)
	other := relaytest.NewCerts(t, t.TempDir())
	rs := capture(t)[:100]
	tlsAddr := relaytest.Start(t, &relaytest.Server{Responses: rs}, certs.ServerTLS(false))
	mtlsAddr := relaytest.Start(t, &relaytest.Server{Responses: rs}, certs.ServerTLS(true))
	for _, tc := range []struct {
		name string
		o    relay.ConnOptions
		err  string
	}{
		{"tls:// with CA and server name", relay.ConnOptions{Server: "tls://" + tlsAddr, TLSCACertFiles: []string{certs.CAFile}, TLSServerName: certs.ServerName}, ""},
		{"--tls by IP SAN", relay.ConnOptions{Server: tlsAddr, TLS: true, TLSCACertFiles: []string{certs.CAFile}}, ""},
		{"mTLS", relay.ConnOptions{Server: mtlsAddr, TLS: true, TLSCACertFiles: []string{certs.CAFile}, TLSClientCertFile: certs.ClientCertFile, TLSClientKeyFile: certs.ClientKeyFile}, ""},
		{"mTLS without a client certificate", relay.ConnOptions{Server: mtlsAddr, TLS: true, TLSCACertFiles: []string{certs.CAFile}}, "hubble relay unreachable"},
		{"wrong CA", relay.ConnOptions{Server: tlsAddr, TLS: true, TLSCACertFiles: []string{other.CAFile}}, "certificate signed by unknown authority"},
		{"insecure skips verification", relay.ConnOptions{Server: tlsAddr, TLS: true, TLSAllowInsecure: true}, ""},
		{"plaintext to a TLS server", relay.ConnOptions{Server: tlsAddr}, "hubble relay unreachable"},
		{"CA file missing", relay.ConnOptions{Server: tlsAddr, TLS: true, TLSCACertFiles: []string{dir + "/nope.crt"}}, "--tls-ca-cert-files: open"},
		{"CA file not PEM", relay.ConnOptions{Server: tlsAddr, TLS: true, TLSCACertFiles: []string{certs.ServerKeyFile}}, "not a PEM encoded certificate"},
		{"half a client pair", relay.ConnOptions{Server: mtlsAddr, TLS: true, TLSClientCertFile: certs.ClientCertFile}, "go together"},
		{"basic auth needs TLS", relay.ConnOptions{Server: tlsAddr, BasicAuthUsername: "u"}, "basic authentication needs TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Timeout = 3 * time.Second
			c, st, err := relay.Dial(context.Background(), tc.o)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if !strings.Contains(relay.FormatStatus(st), "3 nodes connected") {
					t.Errorf("status %q", relay.FormatStatus(st))
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("connected, want an error with %q", tc.err)
			}
			if !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %q, want %q", err, tc.err)
			}
		})
	}
}

func TestRelayBasicAuth(t *testing.T) {
	certs := relaytest.NewCerts(t, t.TempDir())
	addr := relaytest.Start(t, &relaytest.Server{Authorization: "Basic dXNlcjpzM2NyZXQ="}, certs.ServerTLS(false)) // user:s3cret
	o := relay.ConnOptions{Server: "tls://" + addr, TLSCACertFiles: []string{certs.CAFile}, BasicAuthUsername: "user", BasicAuthPassword: "s3cret"}
	c, _, err := relay.Dial(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	o.BasicAuthPassword = "wrong"
	if _, _, err := relay.Dial(context.Background(), o); err == nil || !strings.Contains(err.Error(), "bad credentials") {
		t.Errorf("wrong password: %v", err)
	}
}

func TestRelayUnreachable(t *testing.T) {
	start := time.Now()
	_, _, err := relay.Dial(context.Background(), relay.ConnOptions{Server: "127.0.0.1:1", Timeout: 2 * time.Second})
	if !errors.Is(err, relay.ErrUnreachable) {
		t.Fatalf("error %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v, more than the timeout", d)
	}
}

func TestPlaintext(t *testing.T) {
	for server, want := range map[string]bool{
		"localhost:4245": false, "127.0.0.1:4245": false, "[::1]:4245": false,
		"hubble-relay.kube-system:80": true, "10.0.0.5:4245": true, "tls://10.0.0.5:4245": false,
	} {
		if got := (&relay.ConnOptions{Server: server}).Plaintext(); got != want {
			t.Errorf("%s: Plaintext() = %v, want %v", server, got, want)
		}
	}
}

// synthetic returns the i-th of a stream of pod-to-pod flows across a
// handful of workloads, each a new connection a millisecond apart.
func synthetic(n int) func(i int) *observer.GetFlowsResponse {
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	return func(i int) *observer.GetFlowsResponse {
		if i >= n {
			return nil
		}
		ep := func(app string) *flowpb.Endpoint {
			return &flowpb.Endpoint{Identity: 5000, Namespace: "ns", PodName: app + "-0", Labels: []string{"k8s:app=" + app, "k8s:io.kubernetes.pod.namespace=ns"}}
		}
		ts := timestamppb.New(t0.Add(time.Duration(i) * time.Millisecond))
		f := &flowpb.Flow{
			Time: ts, Verdict: flowpb.Verdict_FORWARDED, EventType: &flowpb.CiliumEventType{Type: 4},
			Source: ep(fmt.Sprintf("c%d", i%7)), Destination: ep(fmt.Sprintf("s%d", i%5)),
			IP: &flowpb.IP{Source: fmt.Sprintf("10.0.%d.%d", i%7, 1+i%200), Destination: "10.1.0.1"},
			L4: &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{SourcePort: uint32(32768 + i%28000), DestinationPort: 8080, Flags: &flowpb.TCPFlags{SYN: true}}}},
		}
		return &observer.GetFlowsResponse{ResponseTypes: &observer.GetFlowsResponse_Flow{Flow: f}, Time: ts}
	}
}

// TestRelayBoundedMemory streams a million flows: memory stays bounded by
// the edges, not the flows.
func TestRelayBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a million flows")
	}
	const n = 1_000_000
	addr := relaytest.Start(t, &relaytest.Server{Generate: synthetic(n)}, nil)
	c, _, err := relay.Dial(context.Background(), relay.ConnOptions{Server: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src := c.Source(relay.SourceOptions{MaxFlows: n})
	g := learn.NewGraph()
	l := learn.NewLearner(g, nil)
	var peak uint64
	l.Every(100*time.Millisecond, func() error {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		return nil
	})
	if err := l.Learn(context.Background(), src, nil); err != nil {
		t.Fatal(err)
	}
	if s := l.Summary(); s.Flows != n {
		t.Fatalf("%d flows learned, want %d", s.Flows, n)
	}
	if _, edges := g.Len(); edges != 35 {
		t.Errorf("%d edges, want 35", edges)
	}
	t.Logf("peak heap in use: %d MiB", peak>>20)
	if peak > 256<<20 {
		t.Errorf("peak heap %d MiB for %d flows: memory is not bounded by the edges", peak>>20, n)
	}
}

// BenchmarkRelay reports flows/s learned from a loopback relay, and the
// ratio to a client in the same run that only receives and discards.
func BenchmarkRelay(b *testing.B) {
	const n = 200_000
	addr := relaytest.Start(b, &relaytest.Server{Generate: synthetic(n)}, nil)
	c, _, err := relay.Dial(context.Background(), relay.ConnOptions{Server: addr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	// The ceiling: a client that only receives and discards.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	baseline := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		stream, err := observer.NewObserverClient(conn).GetFlows(context.Background(), &observer.GetFlowsRequest{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err != nil {
				break
			}
		}
		baseline = min(baseline, time.Since(start))
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	iters := 0
	for b.Loop() {
		src := c.Source(relay.SourceOptions{MaxFlows: n})
		if err := learn.NewLearner(learn.NewGraph(), nil).Learn(context.Background(), src, nil); err != nil {
			b.Fatal(err)
		}
		iters++
	}
	per := time.Since(start) / time.Duration(iters)
	b.ReportMetric(n/per.Seconds(), "flows/s")
	b.ReportMetric(float64(per)/float64(baseline), "x-receive-baseline")
}
