// Package synth turns a learned graph into CiliumNetworkPolicies: one per
// workload, default deny in both directions, allowing exactly the observed
// paths, with selectors a person would write. Every policy it returns
// passes Cilium's Rule.Sanitize and Cilium's CRD schema.
package synth
