package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cnpgen/cnpgen/internal/relaytest"
	"github.com/cnpgen/cnpgen/learn"
)

const bookinfo = "../../testdata/flows/hubble-otel/basic-sample-400-tcp-flows.json"

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, errb.String()
}

func TestLearnFromRelayEqualsFile(t *testing.T) {
	rs := relaytest.LoadFile(t, bookinfo)
	dir := t.TempDir()
	sorted := filepath.Join(dir, "sorted.json")
	if err := os.WriteFile(sorted, relaytest.Encode(t, rs), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := runCLI(t, "learn", "-f", sorted, "--graph", filepath.Join(dir, "file.json")); code != 0 {
		t.Fatalf("learn from file: %d\n%s", code, stderr)
	}
	addr := relaytest.Start(t, &relaytest.Server{Responses: rs, Cuts: []int{100, 50}}, nil)
	code, stderr := runCLI(t, "learn", "--server", addr, "--max-flows", strconv.Itoa(len(rs)), "--graph", filepath.Join(dir, "relay.json"))
	if code != 0 {
		t.Fatalf("learn from relay: %d\n%s", code, stderr)
	}
	for _, want := range []string{"connected to " + addr + "; hubble: 400/4095 flows in buffer", "stream from " + addr + " broke", "resuming in"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, "file.json"))
	b, _ := os.ReadFile(filepath.Join(dir, "relay.json"))
	if !bytes.Equal(a, b) {
		t.Errorf("graphs differ")
	}
}

func TestLearnFromRelayDuration(t *testing.T) {
	rs := relaytest.LoadFile(t, bookinfo)
	addr := relaytest.Start(t, &relaytest.Server{Responses: rs, StallAfter: 200}, nil)
	graph := filepath.Join(t.TempDir(), "g.json")
	start := time.Now()
	code, stderr := runCLI(t, "learn", "--server", addr, "--duration", "1500ms", "--graph", graph)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("--duration 1.5s took %v", d)
	}
	// The server stalls after 200 flows; how many arrived before the
	// deadline depends on the machine's load, not on --duration.
	m := regexp.MustCompile(`read (\d+) records`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary in stderr:\n%s", stderr)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 || n > 200 {
		t.Errorf("read %d records, want 1..200\n%s", n, stderr)
	}
}

func TestLearnFromRelayErrors(t *testing.T) {
	certs := relaytest.NewCerts(t, t.TempDir())
	other := relaytest.NewCerts(t, t.TempDir())
	addr := relaytest.Start(t, &relaytest.Server{Responses: relaytest.LoadFile(t, bookinfo)}, certs.ServerTLS(true))
	graph := filepath.Join(t.TempDir(), "g.json")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong CA", []string{"--tls", "--tls-ca-cert-files", other.CAFile}, "certificate signed by unknown authority"},
		{"no client certificate", []string{"--tls", "--tls-ca-cert-files", certs.CAFile}, "hubble relay unreachable"},
		{"plaintext", nil, "hubble relay unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runCLI(t, append([]string{"learn", "--server", addr, "--timeout", "3s", "--duration", "5s", "--graph", graph}, tc.args...)...)
			if code != exitError || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(graph); err == nil {
				t.Error("graph written")
			}
		})
	}
	code, stderr := runCLI(t, "learn", "--server", addr, "--tls", "--tls-ca-cert-files", certs.CAFile,
		"--tls-client-cert-file", certs.ClientCertFile, "--tls-client-key-file", certs.ClientKeyFile, "--max-flows", "1", "--graph", graph)
	if code != 0 {
		t.Errorf("mTLS: exit %d\n%s", code, stderr)
	}
}

// TestInterruptRelay interrupts a learn that follows a relay which went
// quiet: the checkpoint was written while it waited, and the interrupt
// writes a valid graph and exits 130.
func TestInterruptRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	rs := relaytest.LoadFile(t, bookinfo)
	addr := relaytest.Start(t, &relaytest.Server{Responses: rs, StallAfter: len(rs)}, nil)
	graph := filepath.Join(t.TempDir(), "graph.json")
	cmd := exec.Command(os.Args[0], "learn", "--server", addr, "--checkpoint", "200ms", "--graph", graph)
	cmd.Env = append(os.Environ(), "CNPGEN_RUN_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if g := readGraph(t, graph); g != nil {
			if _, edges := g.Len(); edges == 16 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no complete checkpoint within 30s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitSignal {
		t.Fatalf("exit: %v, want %d; stderr:\n%s", err, exitSignal, stderr.String())
	}
	if g := readGraph(t, graph); g == nil {
		t.Fatal("no graph after the interrupt")
	}
}

func readGraph(t *testing.T, path string) *learn.Graph {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	g, err := learn.ReadGraph(f)
	if err != nil {
		t.Fatalf("checkpoint is not a valid graph: %v", err)
	}
	return g
}

func TestLearnFromRelayRetry(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens until the server starts below
	done := make(chan struct{})
	var code int
	var stderr string
	go func() {
		defer close(done)
		code, stderr = runCLI(t, "learn", "--server", addr, "--retry", "--timeout", "1s", "--max-flows", "10", "--graph", filepath.Join(t.TempDir(), "g.json"))
	}()
	time.Sleep(700 * time.Millisecond) // let it fail at least once
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	relaytest.Serve(t, lis, &relaytest.Server{Responses: relaytest.LoadFile(t, bookinfo)}, nil)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("--retry did not connect once the server was up")
	}
	if code != 0 || !strings.Contains(stderr, "retrying in") || !strings.Contains(stderr, "connected to") {
		t.Errorf("exit %d; stderr:\n%s", code, stderr)
	}
}
