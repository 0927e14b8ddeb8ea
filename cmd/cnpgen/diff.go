package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnpgen/cnpgen/diff"
	"github.com/cnpgen/cnpgen/learn"
)

type diffOptions struct {
	pf       policyFlags
	against  []string
	universe bool
	graph    string
	inputs   []string
	output   string
	failOn   []string
	noFix    bool
}

func newDiffCmd() *cobra.Command {
	o := &diffOptions{}
	cmd := &cobra.Command{
		Use:   "diff (--policies PATH… | --live) (--graph graph.json | --input-file FILE…)",
		Short: "Compare policies with observed traffic: denied-but-needed, allowed-but-unused, drift",
		Long: `diff evaluates what was observed (the edges of --graph, and/or flows of
--input-file learned on the fly) against a policy set — files and directories
with --policies, or the cluster with --live — and reports:

  denied-but-needed   observed connections (forwarded, audited, or dropped by
                      policy) that the policies deny, with the deciding policy
                      and the rule cnpgen synth would write to allow them;
                      and L7 requests the policies' HTTP/DNS rules refuse;
  allowed-but-unused  rules, peers and ports no observation used, and policies
                      that select no observed endpoint — in the observed window
                      only, which the report states;
  drift               with --against, connections whose verdict differs between
                      the two policy sets (with --universe also every pair of
                      observed workloads on every port observed on the server);
  attribution         edges where Hubble's own *_allowed_by/*_denied_by
                      disagree with the evaluator;
  unresolved          toServices and named ports that need --live.

Exit status: 0 no findings in the --fail-on classes, 1 findings, 2 errors.`,
		Example: `  cnpgen diff --policies deploy/policies --graph graph.json
  cnpgen diff --live --graph graph.json -o markdown > comment.md
  cnpgen diff --policies repo/ --against synthesized/ --graph graph.json --universe
  cnpgen diff --policies policies/ -f flows.json -o github --fail-on denied-but-needed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	o.pf.register(f)
	f.StringArrayVar(&o.against, "against", nil, "second policy set to compare verdicts with (files, directories or -); repeatable")
	f.BoolVar(&o.universe, "universe", false, "with --against, compare every pair of observed workloads on every observed server port")
	f.StringVar(&o.graph, "graph", "", "learned graph to compare")
	f.StringArrayVarP(&o.inputs, "input-file", "f", nil, "flows to learn and compare ('-' for stdin); repeatable")
	f.StringVarP(&o.output, "output", "o", "text", "output format: "+strings.Join(diff.Formats, ", "))
	f.StringSliceVar(&o.failOn, "fail-on", []string{diff.ClassDenied, diff.ClassDrift}, "finding classes that make the exit status 1: "+strings.Join(diff.Classes, ", ")+", or none")
	f.BoolVar(&o.noFix, "no-fix", false, "do not propose rules for denied connections")
	return cmd
}

func (o *diffOptions) run(cmd *cobra.Command) error {
	if !slices.Contains(diff.Formats, o.output) {
		return fmt.Errorf("--output %q: want one of %s", o.output, strings.Join(diff.Formats, ", "))
	}
	for _, c := range o.failOn {
		if c != "none" && !slices.Contains(diff.Classes, c) {
			return fmt.Errorf("--fail-on %q: want %s, or none", c, strings.Join(diff.Classes, ", "))
		}
	}
	if o.graph == "" && len(o.inputs) == 0 {
		return errors.New("no observations: give --graph and/or --input-file")
	}
	if o.universe && len(o.against) == 0 {
		return errors.New("--universe needs --against")
	}
	stdin := 0
	for _, s := range slices.Concat(o.pf.paths, o.against, o.inputs) {
		if s == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return errors.New("stdin ('-') can be read only once")
	}
	stderr := cmd.ErrOrStderr()
	l, err := o.pf.load(cmd.Context(), cmd.InOrStdin(), stderr)
	if err != nil {
		return err
	}
	var opts diff.AnalyzeOptions
	var al *loaded
	if len(o.against) > 0 {
		apf := o.pf
		apf.paths, apf.live = o.against, false
		if al, err = apf.load(cmd.Context(), cmd.InOrStdin(), stderr); err != nil {
			return fmt.Errorf("--against: %w", err)
		}
		al.cluster = l.cluster
	}
	opts.Universe = o.universe

	g := learn.NewGraph()
	if o.graph != "" {
		if g, err = loadGraph(o.graph, false); err != nil {
			return err
		}
	}
	if len(o.inputs) > 0 {
		lr := learn.NewLearner(g, nil)
		for _, in := range o.inputs {
			src, err := learn.OpenFile(in, cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("input: %w", err)
			}
			malformed := 0
			err = lr.Learn(cmd.Context(), src, func(e learn.Event) error {
				if malformed++; malformed <= maxMalformedShown {
					fmt.Fprintf(stderr, "%v (skipped)\n", e.Err)
				}
				return nil
			})
			src.Close()
			if err != nil {
				return err
			}
			if malformed > 0 {
				return fmt.Errorf("%s: %d malformed records", in, malformed)
			}
		}
	}
	cluster := diff.ClusterOf(g)
	ev, err := o.pf.evaluator(l, cluster)
	if err != nil {
		return err
	}
	if al != nil {
		if opts.Against, err = o.pf.evaluator(al, cluster); err != nil {
			return fmt.Errorf("--against: %w", err)
		}
	}
	var fx *diff.Fixer
	if !o.noFix {
		fx = diff.NewFixer(g, o.pf.cluster(cluster))
		opts.Fix = fx.Fix
	}
	rep := diff.Analyze(ev, g, opts)
	if fx != nil && fx.Err() != nil {
		fmt.Fprintf(stderr, "warning: no fixes proposed: %v\n", fx.Err())
	}
	for _, inv := range l.invalid {
		rep.Unresolved = append(rep.Unresolved, "invalid policy skipped: "+inv)
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf, o.output); err != nil {
		return err
	}
	if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
		return err
	}
	var failed []string
	for _, c := range o.failOn {
		if n := rep.Count(c); n > 0 {
			failed = append(failed, fmt.Sprintf("%d %s", n, c))
		}
	}
	if len(failed) > 0 {
		return &exitCodeError{exitFindings, errors.New("findings: " + strings.Join(failed, ", "))}
	}
	return nil
}
