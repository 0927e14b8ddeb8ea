package main

import (
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
	"github.com/cnpgen/cnpgen/learn"
)

type learnOptions struct {
	inputs  []string
	graph   string
	strict  bool
	filters *hubbleflags.Flags
}

// maxMalformedShown bounds how many malformed records are printed per
// input; the rest are counted in the summary.
const maxMalformedShown = 10

func newLearnCmd() *cobra.Command {
	o := &learnOptions{}
	cmd := &cobra.Command{
		Use:   "learn --input-file FILE… [--graph graph.json]",
		Short: "Learn who talks to whom from Hubble flows into a graph",
		Long: `learn reads Hubble flows and adds every connection it sees to a graph file:
client and server workload (or entity, or external address with its DNS names),
protocol and server port, HTTP and DNS detail, counts, verdicts and first/last
seen times. An existing graph is added to, never replaced.

Input files may be 'hubble observe -o json' or '-o jsonpb' output, bare flow
lines, Hubble exporter logs (also rotated and .gz), or a JSON array of any of
those; '-' reads stdin. Malformed records are reported as file:line and
skipped (--strict makes them fatal).

Ctrl-C stops reading and writes what was learned so far; a second Ctrl-C exits
at once and leaves the graph file as it was.`,
		Example: `  hubble observe --all -o jsonpb > flows.json
  cnpgen learn --input-file flows.json --graph graph.json
  cnpgen learn --input-file node1/events.log --input-file node2/events.log.gz --not --namespace kube-system`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.inputs, "input-file", "f", nil, "read flows from this file ('-' for stdin); repeatable")
	f.StringVar(&o.graph, "graph", "graph.json", "graph file to add to ('-' writes a new graph to stdout)")
	f.BoolVar(&o.strict, "strict", false, "stop at the first malformed record")
	o.filters = hubbleflags.Register(f)
	_ = cmd.MarkFlagRequired("input-file")
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
	g := learn.NewGraph()
	if o.graph != "-" {
		if g, err = loadGraph(o.graph, true); err != nil {
			return err
		}
	}
	// Open every input before learning anything, so a typo fails fast.
	srcs := make([]learn.Source, 0, len(o.inputs))
	defer func() {
		for _, s := range srcs {
			s.Close()
		}
	}()
	for _, in := range o.inputs {
		s, err := learn.OpenFile(in, cmd.InOrStdin())
		if err != nil {
			return fmt.Errorf("input: %w", err)
		}
		srcs = append(srcs, s)
	}

	// The first interrupt stops learning and saves; the default handler is
	// then back, so a second one ends the process at once. The graph file
	// is only ever replaced by rename, so that cannot corrupt it.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	start := time.Now()
	l := learn.NewLearner(g, filter)
	var interrupted bool
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
		if ctx.Err() != nil && cmd.Context().Err() == nil {
			interrupted = true
			break
		}
		if err != nil {
			return fmt.Errorf("%w (graph not written)", err)
		}
	}
	if err := saveGraph(o.graph, g, cmd.OutOrStdout()); err != nil {
		return err
	}
	printSummary(stderr, l.Summary(), g, o.graph, len(srcs), time.Since(start))
	if interrupted {
		return &exitCodeError{exitSignal, errors.New("interrupted: the graph holds what was learned until then")}
	}
	return nil
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
