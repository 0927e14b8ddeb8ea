package diff

import (
	"fmt"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/learn"
	"github.com/cnpgen/cnpgen/synth"
)

// Fixer proposes, for a denied connection, the rule cnpgen synth writes
// for it: the graph is synthesised (every namespace, denied edges
// included) on the first call, and the rule of the subject's policy that
// allows the connection is the fix.
type Fixer struct {
	g           *learn.Graph
	clusterName string
	once        sync.Once
	ev          *Evaluator
	err         error
}

// NewFixer returns a Fixer for g; nothing is synthesised until needed.
func NewFixer(g *learn.Graph, clusterName string) *Fixer {
	return &Fixer{g: g, clusterName: clusterName}
}

// Err reports why no fix could be proposed, if synthesis failed.
func (f *Fixer) Err() error { return f.err }

func (f *Fixer) synthesize() {
	res, err := synth.Synthesize(f.g, synth.Options{IncludeSystem: true, IncludeDenied: true, Version: "fix"})
	if err != nil {
		f.err = err
		return
	}
	data, err := synth.YAML(res.Policies)
	if err != nil {
		f.err = err
		return
	}
	ps, err := Load("synth", data)
	if err != nil {
		f.err = fmt.Errorf("synthesised policies: %w", err)
		return
	}
	if f.ev, err = NewEvaluator(ps, Options{ClusterName: f.clusterName}); err != nil {
		f.err = fmt.Errorf("synthesised policies: %w", err)
	}
}

// Fix returns the YAML of the rule that allows req on one side ("egress"
// at the client, "ingress" at the server), with a comment naming the
// policy it belongs to; "" if synth has no such rule.
func (f *Fixer) Fix(req *Request, side string) string {
	f.once.Do(f.synthesize)
	if f.ev == nil {
		return ""
	}
	v := f.ev.Evaluate(req)
	res := v.Egress
	if side == "ingress" {
		res = v.Ingress
	}
	if res.Decision != Allowed || res.by == nil {
		return ""
	}
	e := res.by
	rule := e.policy.Rules[e.rule]
	var item any
	key := "egress"
	if e.ingress {
		key = "ingress"
		item = rule.Ingress[e.item]
	} else {
		item = rule.Egress[e.item]
	}
	y, err := yaml.Marshal(map[string]any{key: []any{item}})
	if err != nil {
		return ""
	}
	sel := ""
	if rule.EndpointSelector.LabelSelector != nil {
		if b, err := yaml.Marshal(rule.EndpointSelector.MatchLabels); err == nil {
			sel = strings.TrimSpace(strings.ReplaceAll(string(b), "\n", ", "))
		}
	}
	return fmt.Sprintf("# %s of the pods %s in %s (cnpgen synth writes it into %s):\n%s", key, sel, nsOf(e.policy), e.policy.Name, y)
}

func nsOf(p *Policy) string {
	if p.Kind == KindCCNP {
		return "any namespace"
	}
	return "namespace " + p.Namespace
}
