package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnpgen/cnpgen/internal/atomicfile"
	"github.com/cnpgen/cnpgen/internal/hubbleflags"
	"github.com/cnpgen/cnpgen/internal/relay"
	"github.com/cnpgen/cnpgen/learn"
)

type learnOptions struct {
	inputs  []string
	graph   string
	strict  bool
	filters *hubbleflags.Flags

	conn       relay.ConnOptions
	retry      bool
	duration   time.Duration
	maxFlows   uint64
	checkpoint time.Duration
}

// maxMalformedShown bounds how many malformed records are printed per
// input; the rest are counted in the summary.
const maxMalformedShown = 10

func newLearnCmd() *cobra.Command {
	o := &learnOptions{}
	cmd := &cobra.Command{
		Use:   "learn [--input-file FILE… | --server ADDR] [--graph graph.json]",
		Short: "Learn who talks to whom from Hubble flows into a graph",
		Long: `learn reads Hubble flows and adds every connection it sees to a graph file:
client and server workload (or entity, or external address with its DNS names),
protocol and server port, HTTP and DNS detail, counts, verdicts and first/last
seen times. An existing graph is added to, never replaced.

With --input-file it reads files: 'hubble observe -o json' or '-o jsonpb'
output, bare flow lines, Hubble exporter logs (also rotated and .gz), or a
JSON array of any of those; '-' reads stdin. Malformed records are reported
as file:line and skipped (--strict makes them fatal).

Without --input-file it follows Hubble Relay at --server (default
localhost:4245, or $HUBBLE_SERVER; tls:// means TLS), with server-side
filtering, until interrupted or --duration or --max-flows is reached. A
broken stream is resumed where it stopped; the graph is checkpointed every
--checkpoint.

Ctrl-C stops and writes what was learned so far; a second Ctrl-C exits at
once and leaves the graph file as it was.`,
		Example: `  hubble observe --all -o jsonpb > flows.json
  cnpgen learn --input-file flows.json --graph graph.json
  cnpgen learn -f node1/events.log -f node2/events.log.gz --not --namespace kube-system

  cilium hubble port-forward &
  cnpgen learn --graph graph.json --duration 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.inputs) > 0 && cmd.Flags().Changed("server") {
				return errors.New("--input-file and --server cannot be combined")
			}
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.inputs, "input-file", "f", nil, "read flows from this file ('-' for stdin); repeatable")
	f.StringVar(&o.graph, "graph", "graph.json", "graph file to add to ('-' writes a new graph to stdout)")
	f.BoolVar(&o.strict, "strict", false, "stop at the first malformed record")
	o.filters = hubbleflags.Register(f)

	server := os.Getenv("HUBBLE_SERVER")
	if server == "" {
		server = relay.DefaultServer
	}
	f.StringVar(&o.conn.Server, "server", server, "address of Hubble Relay; tls:// prefix means TLS (env HUBBLE_SERVER)")
	f.BoolVar(&o.conn.TLS, "tls", false, "connect to the server with TLS")
	f.BoolVar(&o.conn.TLSAllowInsecure, "tls-allow-insecure", false, "allow the server's certificate to go unverified")
	f.StringSliceVar(&o.conn.TLSCACertFiles, "tls-ca-cert-files", nil, "paths to custom certificate authority PEM files")
	f.StringVar(&o.conn.TLSClientCertFile, "tls-client-cert-file", "", "client certificate for mutual TLS")
	f.StringVar(&o.conn.TLSClientKeyFile, "tls-client-key-file", "", "client key for mutual TLS")
	f.StringVar(&o.conn.TLSServerName, "tls-server-name", "", "server name to verify the certificate against, e.g. instance.hubble-relay.cilium.io")
	f.DurationVar(&o.conn.Timeout, "timeout", relay.DefaultTimeout, "timeout to connect to the server")
	f.StringVar(&o.conn.BasicAuthUsername, "basic-auth-username", "", "username for basic authentication (needs TLS)")
	f.StringVar(&o.conn.BasicAuthPassword, "basic-auth-password", "", "password for basic authentication")
	f.BoolVar(&o.retry, "retry", false, "keep trying to reach the server instead of failing")
	f.DurationVar(&o.duration, "duration", 0, "stop learning from the server after this long (0: until interrupted)")
	f.Uint64Var(&o.maxFlows, "max-flows", 0, "stop learning from the server after this many flows (0: no limit)")
	f.DurationVar(&o.checkpoint, "checkpoint", time.Minute, "write the graph this often while learning from the server")
	return cmd
}

func (o *learnOptions) run(cmd *cobra.Command) error {
	stderr := cmd.ErrOrStderr()
	filter, err := o.filters.Filter(time.Now())
	if err != nil {
		return err
	}
	if stdinUses := len(o.inputs) - len(slices.DeleteFunc(slices.Clone(o.inputs), func(s string) bool { return s == "-" })); stdinUses > 1 {
		return errors.New("--input-file -: stdin can be read only once")
	}
	if o.graph == "-" && len(o.inputs) == 0 {
		return errors.New("--graph -: learning from a server needs a graph file to checkpoint to")
	}
	g := learn.NewGraph()
	if o.graph != "-" {
		if g, err = loadGraph(o.graph, true); err != nil {
			return err
		}
	}

	// The first interrupt stops learning and saves; the default handler is
	// then back, so a second one ends the process at once. The graph file
	// is only ever replaced by rename, so that cannot corrupt it.
	sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-sigCtx.Done()
		stop()
	}()

	var srcs []learn.Source
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	ctx := sigCtx
	if len(o.inputs) > 0 {
		// Open every input before learning anything, so a typo fails fast.
		for _, in := range o.inputs {
			s, err := learn.OpenFile(in, cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("input: %w", err)
			}
			srcs = append(srcs, s)
		}
	} else {
		src, err := o.dial(sigCtx, stderr, filter)
		if err != nil {
			if sigCtx.Err() != nil {
				return &exitCodeError{exitSignal, errors.New("interrupted before the server answered")}
			}
			return err
		}
		srcs = append(srcs, src)
		if o.duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(sigCtx, o.duration)
			defer cancel()
		}
	}

	start := time.Now()
	l := learn.NewLearner(g, filter)
	interactive := isTerminal(stderr)
	if len(o.inputs) == 0 {
		l.Every(o.checkpoint, func() error { return saveGraph(o.graph, g, cmd.OutOrStdout()) })
	}
	if interactive || len(o.inputs) == 0 {
		every := time.Minute
		if interactive {
			every = time.Second
		}
		l.Every(every, func() error {
			printProgress(stderr, l.Summary(), g, start, interactive)
			return nil
		})
	}
	for _, s := range srcs {
		shown := 0
		err := l.Learn(ctx, s, func(ev learn.Event) error {
			if o.strict {
				return ev.Err
			}
			if shown++; shown <= maxMalformedShown {
				fmt.Fprintf(stderr, "%v (skipped)\n", ev.Err)
			}
			return nil
		})
		if shown > maxMalformedShown {
			fmt.Fprintf(stderr, "%s: %d more malformed records skipped\n", s.Name(), shown-maxMalformedShown)
		}
		if ctx.Err() != nil {
			break // interrupted, or --duration is up
		}
		if err != nil {
			return fmt.Errorf("%w (graph not written)", err)
		}
	}
	if interactive {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err := saveGraph(o.graph, g, cmd.OutOrStdout()); err != nil {
		return err
	}
	printSummary(stderr, l.Summary(), g, o.graph, len(srcs), time.Since(start))
	if sigCtx.Err() != nil && cmd.Context().Err() == nil {
		return &exitCodeError{exitSignal, errors.New("interrupted: the graph holds what was learned until then")}
	}
	return nil
}

// dial connects to Hubble Relay, retrying with --retry, and returns a
// source of its flows.
func (o *learnOptions) dial(ctx context.Context, stderr io.Writer, filter *learn.Filter) (learn.Source, error) {
	if o.conn.Plaintext() {
		fmt.Fprintf(stderr, "warning: flows from %s travel unencrypted; use --tls or a tls:// address\n", o.conn.Server)
	}
	wait := 250 * time.Millisecond
	for {
		c, st, err := relay.Dial(ctx, o.conn)
		if err == nil {
			fmt.Fprintf(stderr, "connected to %s; %s\n", o.conn.Server, relay.FormatStatus(st))
			return &relaySource{c.Source(relay.SourceOptions{
				Filter:   filter,
				MaxFlows: o.maxFlows,
				OnReconnect: func(err error, d time.Duration) {
					fmt.Fprintf(stderr, "stream from %s broke (%v); resuming in %s\n", o.conn.Server, err, d.Round(time.Millisecond))
				},
			}), c}, nil
		}
		if !o.retry || !errors.Is(err, relay.ErrUnreachable) {
			return nil, err
		}
		fmt.Fprintf(stderr, "%v; retrying in %s\n", err, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// relaySource closes the connection with the source.
type relaySource struct {
	*relay.Source
	c *relay.Client
}

func (s *relaySource) Close() error { return errors.Join(s.Source.Close(), s.c.Close()) }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func printProgress(w io.Writer, s learn.Summary, g *learn.Graph, start time.Time, interactive bool) {
	peers, edges := g.Len()
	rate := float64(s.Flows) / max(time.Since(start).Seconds(), 1e-3)
	line := fmt.Sprintf("%d flows (%.0f/s), %d edges, %d peers, %d lost events, %d node errors",
		s.Flows, rate, edges, peers, s.Lost, s.NodeErrors)
	if interactive {
		fmt.Fprintf(w, "\r\033[K%s", line)
	} else {
		fmt.Fprintf(w, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
	}
}

// loadGraph reads a graph file; a missing file is an empty graph when
// missingOK.
func loadGraph(path string, missingOK bool) (*learn.Graph, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && missingOK {
		return learn.NewGraph(), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g, err := learn.ReadGraph(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

func saveGraph(path string, g *learn.Graph, stdout io.Writer) error {
	if path == "-" {
		_, err := g.WriteTo(stdout)
		return err
	}
	if err := atomicfile.Write(path, g.Encode(), 0o644); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	return nil
}

func printSummary(w io.Writer, s learn.Summary, g *learn.Graph, graphPath string, inputs int, took time.Duration) {
	skipped := uint64(0)
	for _, n := range s.Skipped {
		skipped += n
	}
	fmt.Fprintf(w, "read %d records from %d input(s) in %s\n", s.Records, inputs, took.Round(time.Millisecond))
	fmt.Fprintf(w, "  flows             %10d\n", s.Flows)
	fmt.Fprintf(w, "  used              %10d", s.Used)
	if s.Reversed > 0 {
		fmt.Fprintf(w, "  (%d replies turned into their request)", s.Reversed)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  skipped           %10d\n", skipped)
	reasons := make([]learn.SkipReason, 0, len(s.Skipped))
	for r := range s.Skipped {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "    %-22s%8d\n", r, s.Skipped[r])
	}
	if s.Lost > 0 {
		fmt.Fprintf(w, "  lost events (reported by Hubble) %d: the graph may miss connections\n", s.Lost)
	}
	if s.NodeErrors > 0 {
		fmt.Fprintf(w, "  Hubble nodes erroring or unavailable: %d reports; their flows are missing\n", s.NodeErrors)
	}
	if !s.First.IsZero() {
		fmt.Fprintf(w, "  flows from %s to %s\n", s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(w, graphLine(g, graphPath))
}

func graphLine(g *learn.Graph, path string) string {
	workloads := 0
	for _, p := range g.Peers() {
		if p.Kind == learn.PeerWorkload {
			workloads++
		}
	}
	peers, edges := g.Len()
	s := fmt.Sprintf("graph %s: %d edges, %d workloads, %d peers", path, edges, workloads, peers)
	if first, last := g.Window(); !first.IsZero() {
		s += fmt.Sprintf(", seen %s to %s", first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))
	}
	return s
}
