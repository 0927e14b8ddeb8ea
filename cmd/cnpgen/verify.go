package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cnpgen/cnpgen/diff"
	"github.com/cnpgen/cnpgen/internal/hubbleflags"
	"github.com/cnpgen/cnpgen/learn"
)

type verifyOptions struct {
	pf      policyFlags
	filters *hubbleflags.Flags
	inputs  []string
	graph   string
	output  string
}

func newVerifyCmd() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify --policies PATH… (--input-file FILE… | --graph graph.json)",
		Short: "Decide, for every flow or edge, whether policies allow it — as Cilium would",
		Long: `verify evaluates each flow of --input-file (or each edge of --graph) against
the policies, with Cilium v1.20.2's semantics: which policies select each end,
per-direction default deny, deny before allow, entities, CIDR and FQDN peers,
ports, and L7 HTTP and DNS rules for L7 flows. Both ends must allow a
connection: egress at the client, ingress at the server.

-o jsonl prints one line per input record, in input order:
  {"allowed":true,"egress":"allowed","ingress":"none",...}
egress and ingress are "allowed", "denied" or "none" (that end is not a Cilium
endpoint, or nothing enforces that direction for it), with the deciding policy
and rule. Replies, L7 responses, flows the hubble-style filters (--namespace,
--pod, --label, --verdict, --not, …) leave out, and non-flow records print
{"skipped":REASON} so that line N of the output is line N of the input.

-o text (the default) lists what is denied and ends with a summary.

Exit status: 0 all allowed, 1 something is denied, 2 bad input.`,
		Example: `  cnpgen verify --policies policies/ --input-file flows.json
  cnpgen verify --policies policies/ --graph graph.json -o jsonl
  kubectl get cnp -A -o yaml | cnpgen verify --policies - -f flows.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	o.pf.register(f)
	f.StringArrayVarP(&o.inputs, "input-file", "f", nil, "flows to evaluate ('-' for stdin); repeatable")
	f.StringVar(&o.graph, "graph", "", "evaluate the edges of this graph instead of flows")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or jsonl")
	o.filters = hubbleflags.Register(f)
	return cmd
}

// verifyLine is one line of -o jsonl.
type verifyLine struct {
	Allowed    bool     `json:"allowed"`
	Egress     string   `json:"egress"`
	Ingress    string   `json:"ingress"`
	EgressBy   string   `json:"egress_by,omitempty"`
	IngressBy  string   `json:"ingress_by,omitempty"`
	L7         string   `json:"l7,omitempty"`
	Unresolved []string `json:"unresolved,omitempty"`
	Edge       string   `json:"edge,omitempty"`
	Source     string   `json:"source,omitempty"`
}

type skippedLine struct {
	Skipped string `json:"skipped"`
	Error   string `json:"error,omitempty"`
	Source  string `json:"source,omitempty"`
}

// clusterSample is how many flows tell the cluster name when nothing
// else needs a first pass over the input.
const clusterSample = 10000

type verifyCounts struct {
	allowed, denied, skipped, malformed int
}

func (o *verifyOptions) run(cmd *cobra.Command) error {
	switch o.output {
	case "text", "jsonl":
	default:
		return fmt.Errorf("--output %q: want text or jsonl", o.output)
	}
	if (len(o.inputs) > 0) == (o.graph != "") {
		return errors.New("give either --input-file or --graph")
	}
	stdinUses := 0
	for _, in := range o.inputs {
		if in == "-" {
			stdinUses++
		}
	}
	for _, p := range o.pf.paths {
		if p == "-" {
			stdinUses++
		}
	}
	if stdinUses > 1 {
		return errors.New("stdin ('-') can be read only once")
	}
	filter, err := o.filters.Filter(time.Now())
	if err != nil {
		return err
	}
	l, err := o.pf.load(cmd.Context(), cmd.InOrStdin(), cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	// The graph, and for files the DNS answers and cluster name, come
	// first: both shape the evaluation.
	var g *learn.Graph
	names := diff.NewNameCache()
	observedCluster := ""
	if o.graph != "" {
		if g, err = loadGraph(o.graph, false); err != nil {
			return err
		}
		observedCluster = diff.ClusterOf(g)
	} else {
		// The DNS proxy's cache outlives any capture: names resolved
		// anywhere in the input files count for all their flows (stdin is
		// read once, so there only answers seen before a flow count).
		// Without toFQDNs rules only the cluster name is wanted, and the
		// first flows tell it; with --cluster-name nothing is.
		needNames, needCluster := diff.UsesFQDN(l.policies), o.pf.clusterName == ""
		clusters := map[string]bool{}
		seen := 0
		errEnough := errors.New("enough")
		for _, in := range o.inputs {
			if in == "-" || !needNames && (!needCluster || seen >= clusterSample) {
				continue
			}
			src, err := learn.OpenFile(in, nil)
			if err != nil {
				return fmt.Errorf("input: %w", err)
			}
			err = eachEvent(cmd, src, func(e learn.Event) error {
				if e.Kind != learn.EventFlow {
					return nil
				}
				names.Observe(e.Flow)
				for _, ep := range []*learn.Endpoint{&e.Flow.Source, &e.Flow.Destination} {
					if ep.Cluster != "" {
						clusters[ep.Cluster] = true
					}
				}
				if seen++; !needNames && seen >= clusterSample {
					return errEnough
				}
				return nil
			})
			src.Close()
			if err != nil && err != errEnough {
				return err
			}
		}
		if len(clusters) == 1 {
			for c := range clusters {
				observedCluster = c
			}
		}
	}
	ev, err := o.pf.evaluator(l, observedCluster)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	var c verifyCounts
	// Text groups denied connections: a capture repeats the same one
	// thousands of times. Rows keep the order they first appeared in.
	type row struct {
		where, what, egress, ingress string
		unresolved                   []string
		count                        int
	}
	var rows []*row
	byKey := map[string]*row{}
	emit := func(line verifyLine, what string) error {
		if line.Allowed {
			c.allowed++
		} else {
			c.denied++
		}
		if o.output == "jsonl" {
			return writeJSONLine(out, line)
		}
		if line.Allowed && line.L7 == "" && len(line.Unresolved) == 0 {
			return nil
		}
		r := &row{where: line.Source, what: what, egress: sideText(line.Egress, line.EgressBy), ingress: sideText(line.Ingress, line.IngressBy), unresolved: line.Unresolved}
		if r.where == "" {
			r.where = "edge"
		}
		if line.L7 != "" {
			r.what += " (L7 request)"
		}
		key := strings.Join(append([]string{r.what, r.egress, r.ingress}, r.unresolved...), "\x00")
		if prev := byKey[key]; prev != nil {
			prev.count++
			return nil
		}
		r.count = 1
		byKey[key] = r
		rows = append(rows, r)
		return nil
	}
	skip := func(s skippedLine) error {
		c.skipped++
		if o.output == "jsonl" {
			return writeJSONLine(out, s)
		}
		return nil
	}
	var malformed []string
	if g != nil {
		gi := diff.NewGraphIdentities(g, o.pf.cluster(observedCluster))
		for _, e := range g.Edges() {
			req := gi.EdgeRequest(e)
			name := diff.EdgeName(g, e)
			if req == nil {
				if err := skip(skippedLine{Skipped: diff.SkipNoPeer}); err != nil {
					return err
				}
				continue
			}
			line := lineOf(ev.Evaluate(req))
			line.Edge = name
			if err := emit(line, name); err != nil {
				return err
			}
		}
	} else {
		for _, in := range o.inputs {
			src, err := learn.OpenFile(in, cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("input: %w", err)
			}
			err = eachEvent(cmd, src, func(e learn.Event) error {
				switch e.Kind {
				case learn.EventFlow:
				case learn.EventLost:
					return skip(skippedLine{Skipped: "lost-events", Source: e.Pos.String()})
				case learn.EventMalformed:
					c.malformed++
					malformed = append(malformed, e.Err.Error())
					return skip(skippedLine{Skipped: "malformed", Error: e.Err.Error(), Source: e.Pos.String()})
				case learn.EventOther:
					return skip(skippedLine{Skipped: e.Other, Source: e.Pos.String()})
				default:
					return nil
				}
				names.Observe(e.Flow)
				if !filter.Match(e.Flow) {
					return skip(skippedLine{Skipped: "filtered", Source: e.Pos.String()})
				}
				req, why := diff.RequestFromFlow(e.Flow)
				if why != "" {
					return skip(skippedLine{Skipped: strings.ReplaceAll(why, " ", "-"), Source: e.Pos.String()})
				}
				names.Annotate(req)
				line := lineOf(ev.Evaluate(req))
				line.Source = e.Pos.String()
				return emit(line, flowGroupName(e.Flow))
			})
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if o.output == "text" {
		if len(rows) > 0 {
			fmt.Fprintln(tw, "FIRST SEEN AT\tCONNECTION\tCOUNT\tEGRESS\tINGRESS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.where, r.what, r.count, r.egress, r.ingress)
				for _, u := range r.unresolved {
					fmt.Fprintf(tw, "\t  unresolved: %s\t\t\t\n", u)
				}
			}
			tw.Flush()
			fmt.Fprintln(out)
		}
		what := "flows"
		if o.graph != "" {
			what = "edges"
		}
		fmt.Fprintf(out, "%d %s: %d allowed, %d denied, %d skipped (%d policies", c.allowed+c.denied, what, c.allowed, c.denied, c.skipped, len(l.policies))
		if len(l.invalid) > 0 {
			fmt.Fprintf(out, "; %d invalid ones skipped", len(l.invalid))
		}
		fmt.Fprintln(out, ")")
	}
	if err := out.Flush(); err != nil {
		return err
	}
	for i, m := range malformed {
		if i == maxMalformedShown {
			fmt.Fprintf(cmd.ErrOrStderr(), "%d more malformed records\n", len(malformed)-i)
			break
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s\n", m)
	}
	switch {
	case c.malformed > 0:
		return fmt.Errorf("%d malformed records", c.malformed)
	case c.denied > 0:
		return &exitCodeError{exitFindings, fmt.Errorf("%d denied", c.denied)}
	}
	return nil
}

// eachEvent calls fn for every event of src.
func eachEvent(cmd *cobra.Command, src learn.Source, fn func(learn.Event) error) error {
	for {
		e, err := src.Next(cmd.Context())
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

func lineOf(v diff.Verdict) verifyLine {
	line := verifyLine{Allowed: v.Allowed, Egress: string(v.Egress.Decision), Ingress: string(v.Ingress.Decision)}
	if v.Egress.Decision != diff.None {
		line.EgressBy = v.Egress.Ref()
	}
	if v.Ingress.Decision != diff.None {
		line.IngressBy = v.Ingress.Ref()
	}
	if v.Egress.L7 || v.Ingress.L7 {
		line.L7 = "denied"
	}
	line.Unresolved = slices.Concat(v.Egress.Unresolved, v.Ingress.Unresolved)
	return line
}

func sideText(decision, by string) string {
	if by == "" || decision == string(diff.Allowed) {
		return decision
	}
	return decision + " (" + by + ")"
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// flowGroupName is "ns/workload → ns/workload 8080/TCP" for a flow: pods
// of one workload are one row.
func flowGroupName(f *learn.Flow) string {
	return endpointName(&f.Source, f.SrcIP.String(), f.SourceNames) + " → " + endpointName(&f.Destination, f.DstIP.String(), f.DestinationNames) + " " + flowPort(f)
}

func flowPort(f *learn.Flow) string {
	if f.Proto.IsICMP() {
		return diff.PortName(f.Proto, uint16(f.ICMPType))
	}
	return diff.PortName(f.Proto, f.DstPort)
}

func endpointName(ep *learn.Endpoint, ip string, names []string) string {
	if ep.Namespace != "" && len(ep.Workloads) > 0 {
		return ep.Namespace + "/" + ep.Workloads[0].Name
	}
	if ep.Namespace != "" && ep.PodName != "" {
		return ep.Namespace + "/" + ep.PodName
	}
	for _, l := range ep.Labels {
		if r, ok := strings.CutPrefix(l, "reserved:"); ok && !strings.HasPrefix(r, "world") {
			return "entity:" + r
		}
	}
	if len(names) > 0 {
		return ip + " (" + names[0] + ")"
	}
	return ip
}
