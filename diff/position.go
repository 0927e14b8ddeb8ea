package diff

import (
	"fmt"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// RuleSource returns file:line of a rule of the policy, named as
// Result.Rule names it ("spec.egress[1]", "specs[0].ingressDeny[2]",
// "spec.ingress[0].from[1]"), so that reports and annotations point at
// the rule itself. It falls back to the policy's Source when the rule
// cannot be located (List items, live objects, defaults).
func (p *Policy) RuleSource(where string) string {
	if p.doc == nil || where == "" {
		return p.Source
	}
	if p.root == nil {
		var root yamlv3.Node
		if err := yamlv3.Unmarshal(p.doc, &root); err != nil || len(root.Content) == 0 {
			p.doc = nil // not to be tried again
			return p.Source
		}
		p.root = root.Content[0]
	}
	n := p.root
	found := false
	for _, seg := range strings.Split(where, ".") {
		key, idx, hasIdx := strings.Cut(seg, "[")
		if n = mapValue(n, key); n == nil {
			break
		}
		if hasIdx {
			i, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			if err != nil || n.Kind != yamlv3.SequenceNode || i >= len(n.Content) {
				break
			}
			n = n.Content[i]
		}
		found = true
	}
	if !found || n == nil {
		return p.Source
	}
	return fmt.Sprintf("%s:%d", p.file, p.docStart+n.Line-1)
}

func mapValue(n *yamlv3.Node, key string) *yamlv3.Node {
	if n == nil || n.Kind != yamlv3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
