//go:build tools

// Package tools pins the Kubernetes and etcd servers that cnpgen's
// integration tests start: a real kube-apiserver with Cilium's CRDs.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
)
