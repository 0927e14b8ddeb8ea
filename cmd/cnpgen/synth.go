package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cnpgen/cnpgen/synth"
)

type synthOptions struct {
	graph  string
	output string
	outDir string
	prune  bool
	mode   string
	dns    string
	l7     []string
	scope  string
	cidr   string
	opts   synth.Options
}

func newSynthCmd() *cobra.Command {
	o := &synthOptions{}
	cmd := &cobra.Command{
		Use:   "synth --graph graph.json [-o yaml|json | --out-dir DIR]",
		Short: "Write least-privilege CiliumNetworkPolicies from a learned graph",
		Long: `synth writes one CiliumNetworkPolicy per observed workload: default deny in
both directions, plus exactly the paths the graph holds, on both ends (egress at
the client, ingress at the server). Selectors use the workload's stable labels
(app.kubernetes.io/name, app, k8s-app, name, then more only where needed to tell
workloads apart). External names become toFQDNs with the DNS rule that makes
them work; other external addresses become /32 or /128 CIDRs.

kube-system and Cilium's own namespaces get no policy unless asked
(--include-system or --namespace): an incomplete policy on CoreDNS takes the
cluster down. Every policy passes Cilium's Rule.Sanitize and CRD schema.

A report of what did not become a rule, and why, goes to stderr.`,
		Example: `  cnpgen synth --graph graph.json --out-dir policies/
  kubectl apply -k policies/
  cnpgen synth --graph graph.json --mode audit -o yaml | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.graph, "graph", "graph.json", "the learned graph")
	f.StringVarP(&o.output, "output", "o", "yaml", "output format when not writing a directory: yaml or json")
	f.StringVar(&o.outDir, "out-dir", "", "write DIR/<namespace>/<workload>.yaml and kustomization.yaml files")
	f.BoolVar(&o.prune, "prune", false, "with --out-dir, remove cnpgen's files for workloads no longer observed")
	f.StringVar(&o.mode, "mode", "enforce", "enforce, or audit (enableDefaultDeny false: nothing is dropped)")
	f.StringVar(&o.dns, "dns-visibility", "names", "names: DNS rules allow the names observed; all: any name")
	f.StringSliceVar(&o.opts.Namespaces, "namespace", nil, "only these namespaces")
	f.StringSliceVar(&o.opts.ExcludeNamespaces, "exclude-namespace", nil, "not these namespaces")
	f.StringSliceVar(&o.opts.Workloads, "workload", nil, "only these workloads (namespace/name)")
	f.BoolVar(&o.opts.IncludeSystem, "include-system", false, "also kube-system and Cilium's namespaces")
	f.StringSliceVar(&o.opts.SelectorLabels, "selector-labels", nil, "label keys to select workloads by, in order of preference")
	f.Uint64Var(&o.opts.MinFlows, "min-flows", 0, "edges seen in fewer flows make no rule")
	f.DurationVar(&o.opts.MinAge, "min-age", 0, "edges seen over a shorter time make no rule")
	f.BoolVar(&o.opts.IncludeDenied, "include-denied", false, "also allow edges seen only dropped by policy")
	f.StringSliceVar(&o.l7, "l7", nil, "write L7 rules: http (method and path where requests were seen), dns (on every DNS rule); L7 rules send traffic through Cilium's proxy")
	f.BoolVar(&o.opts.GeneralizePaths, "generalize-paths", false, "with --l7 http, match numeric and uuid path segments by pattern")
	f.BoolVar(&o.opts.PortRanges, "port-ranges", false, "fold runs of three or more consecutive ports into endPort ranges")
	f.StringVar(&o.cidr, "cidr-aggregate", "", "widen IPv4 addresses without a DNS name to this prefix, e.g. /24 (default: exactly the address)")
	f.BoolVar(&o.opts.FQDNOnly, "fqdn-only", false, "no rules for external addresses without a DNS name")
	f.BoolVar(&o.opts.GeneralizeFQDNs, "generalize-fqdns", false, "allow *.domain (matchPattern) where two or more names under one domain were used")
	f.StringVar(&o.scope, "scope", "namespace", "namespace (CiliumNetworkPolicy) or cluster (CiliumClusterwideNetworkPolicy)")
	return cmd
}

func (o *synthOptions) run(cmd *cobra.Command) error {
	switch o.mode {
	case "enforce":
	case "audit":
		o.opts.Audit = true
	default:
		return fmt.Errorf("--mode %q: want enforce or audit", o.mode)
	}
	switch o.dns {
	case "names":
	case "all":
		o.opts.DNSAll = true
	default:
		return fmt.Errorf("--dns-visibility %q: want names or all", o.dns)
	}
	for _, l := range o.l7 {
		switch l {
		case "http":
			o.opts.L7HTTP = true
		case "dns":
			o.opts.L7DNS = true
		default:
			return fmt.Errorf("--l7 %q: want http or dns", l)
		}
	}
	switch o.scope {
	case "namespace":
	case "cluster":
		o.opts.Cluster = true
	default:
		return fmt.Errorf("--scope %q: want namespace or cluster", o.scope)
	}
	if o.cidr != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(o.cidr, "/"))
		if err != nil || n < 1 || n > 32 {
			return fmt.Errorf("--cidr-aggregate %q: want a prefix length like /24", o.cidr)
		}
		o.opts.CIDRPrefix = n
	}
	if o.output != "yaml" && o.output != "json" {
		return fmt.Errorf("-o %q: want yaml or json", o.output)
	}
	g, err := loadGraph(o.graph, false)
	if err != nil {
		return err
	}
	o.opts.Version = cnpgenVersion()
	res, err := synth.Synthesize(g, o.opts)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	for _, f := range res.Report {
		fmt.Fprintf(stderr, "%s: %s\n", f.Subject, f.Reason)
	}
	if o.outDir != "" {
		d, err := synth.WriteDir(o.outDir, res.Policies, o.prune)
		if err != nil {
			return err
		}
		for _, k := range d.Kept {
			fmt.Fprintf(stderr, "%s: not cnpgen's (no %s=cnpgen label); left as it is\n", k, synth.ManagedByLabel)
		}
		for _, r := range d.Removed {
			fmt.Fprintf(stderr, "%s: removed (--prune)\n", r)
		}
		fmt.Fprintf(stderr, "wrote %d policies to %s (kubectl apply -k %s)\n", len(d.Written), o.outDir, strings.TrimSuffix(o.outDir, "/"))
		return nil
	}
	var out []byte
	if o.output == "json" {
		out, err = synth.JSON(res.Policies)
	} else {
		out, err = synth.YAML(res.Policies)
	}
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}
