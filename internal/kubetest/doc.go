// Package kubetest starts a real kube-apiserver backed by a real etcd on
// free loopback ports, for integration tests: server-side dry-run of
// generated policies with Cilium's CRDs installed, and client-go reads.
// The binaries are built from the Go module proxy by hack/kube.sh.
package kubetest
