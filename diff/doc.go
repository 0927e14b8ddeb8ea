// Package diff decides whether policies allow connections, the way
// Cilium v1.20.2 does, and compares policy sets with observed traffic.
//
// [Load] and [LoadPaths] read CiliumNetworkPolicies,
// CiliumClusterwideNetworkPolicies and Kubernetes NetworkPolicies from
// files (checked with Sanitize and Cilium's CRD schema); [LoadLive] reads
// them, and the Services and Pods toServices and named ports need, from a
// cluster. [NewEvaluator] compiles them and [Evaluator.Evaluate] decides a
// [Request] on both ends; testdata/conformance holds Cilium's own verdicts
// that it reproduces. [Analyze] turns a learned graph into a [Report]:
// denied-but-needed, allowed-but-unused, drift, attribution mismatches.
package diff
