package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/cnpgen/cnpgen/diff"
)

// policyFlags selects a policy set: files, directories and stdin, or the
// live cluster.
type policyFlags struct {
	paths       []string
	live        bool
	kubeconfig  string
	kubecontext string
	clusterName string
	strict      bool
}

func (pf *policyFlags) register(f *pflag.FlagSet) {
	f.StringArrayVar(&pf.paths, "policies", nil, "policy file or directory (recursive; .yaml, .yml, .json), or - for stdin; repeatable")
	f.BoolVar(&pf.live, "live", false, "read CiliumNetworkPolicies, CiliumClusterwideNetworkPolicies, NetworkPolicies, Services, Pods and Namespaces from the cluster")
	f.StringVar(&pf.kubeconfig, "kubeconfig", "", "kubeconfig file for --live (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&pf.kubecontext, "context", "", "kubeconfig context for --live (default: the current context)")
	f.StringVar(&pf.clusterName, "cluster-name", "", "Cilium's cluster name: policies only select peers of this cluster (default: the one the observations name, else \"default\")")
	f.BoolVar(&pf.strict, "strict", false, "fail on any policy that cannot be loaded instead of skipping it with a warning")
}

// loaded is a policy set and what was wrong with it.
type loaded struct {
	policies []*diff.Policy
	cluster  *diff.Cluster
	// invalid lists the policies that were skipped.
	invalid []string
	source  string
}

func (pf *policyFlags) load(ctx context.Context, stdin io.Reader, stderr io.Writer) (*loaded, error) {
	switch {
	case pf.live && len(pf.paths) > 0:
		return nil, errors.New("--policies and --live cannot be combined")
	case !pf.live && len(pf.paths) == 0:
		return nil, errors.New("no policies: give --policies PATH (or - for stdin) or --live")
	}
	l := &loaded{}
	var err error
	if pf.live {
		cfg, cerr := diff.RESTConfig(pf.kubeconfig, pf.kubecontext)
		if cerr != nil {
			return nil, cerr
		}
		l.source = "cluster " + cfg.Host
		l.policies, l.cluster, err = diff.LoadLive(ctx, cfg, "")
	} else {
		l.source = fmt.Sprint(pf.paths)
		l.policies, err = diff.LoadPaths(pf.paths, stdin)
	}
	if le, ok := errors.AsType[*diff.LoadError](err); ok {
		if pf.strict {
			return nil, err
		}
		for _, e := range le.Errs {
			fmt.Fprintf(stderr, "warning: %v (policy skipped; --strict makes this fatal)\n", e)
			l.invalid = append(l.invalid, e.Error())
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// evaluator compiles the policies for a cluster: --cluster-name, else
// observed (the cluster the observations name), else Cilium's default.
func (pf *policyFlags) evaluator(l *loaded, observed string) (*diff.Evaluator, error) {
	return diff.NewEvaluator(l.policies, diff.Options{ClusterName: pf.cluster(observed), Cluster: l.cluster})
}

func (pf *policyFlags) cluster(observed string) string {
	switch {
	case pf.clusterName != "":
		return pf.clusterName
	case observed != "":
		return observed
	}
	return "default"
}
