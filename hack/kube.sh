#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd that cnpgen's integration tests
# start, from the Go module proxy (tools/kube pins the versions), into
# .cache/kube/bin (git-ignored). A cached build is reused until
# tools/kube/go.sum changes.
#
#   hack/kube.sh build     build if needed; print the directory
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CNPGEN_KUBE_BIN:-$root/.cache/kube/bin}"
stamp="$bin/.go.sum"

case "${1:-build}" in
build)
	mkdir -p "$bin"
	# Test packages run in parallel and may all ask at once: one builds,
	# the others wait for it and then find the binaries cached.
	exec 9>"$bin/.lock"
	flock 9
	if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ] && cmp -s "$stamp" "$root/tools/kube/go.sum"; then
		echo "$bin"
		exit 0
	fi
	echo "building kube-apiserver and etcd into $bin (several minutes the first time)" >&2
	cd "$root/tools/kube"
	go build -trimpath -o "$bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
	go build -trimpath -o "$bin/etcd.tmp" ./cmd/etcd
	mv "$bin/kube-apiserver.tmp" "$bin/kube-apiserver"
	mv "$bin/etcd.tmp" "$bin/etcd"
	cp "$root/tools/kube/go.sum" "$stamp"
	echo "$bin"
	;;
*)
	echo "usage: $0 build" >&2
	exit 2
	;;
esac
