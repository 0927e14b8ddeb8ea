// Package hubbleflags gives cnpgen commands the flow filter flags of
// `hubble observe` (--namespace, --pod, --label, --ip, --verdict, --since,
// --until, --not and their from-/to- forms), building the same
// flowpb.FlowFilter whitelist and blacklist the hubble CLI builds
// (hubble/cmd/observe/flows_filter.go in cilium v1.20.2).
package hubbleflags
