package flowgen

import (
	"fmt"
	"slices"
	"strings"
)

// Peer is one end of a [Call]: a workload, a reserved entity, or an
// external address with the name it was looked up by.
type Peer struct {
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Entity    string `json:"entity,omitempty"`
	IP        string `json:"ip,omitempty"`
	FQDN      string `json:"fqdn,omitempty"`
}

func (p Peer) String() string {
	switch {
	case p.Workload != "":
		return p.Namespace + "/" + p.Workload
	case p.Entity != "":
		return "entity:" + p.Entity
	default:
		return p.IP
	}
}

// HTTPCall is an HTTP request made on a call.
type HTTPCall struct{ Method, Path string }

// Call is a connection the demo app makes, client to server.
type Call struct {
	From, To Peer
	Proto    string // TCP, UDP, ICMPv4
	Port     uint16 // server port, or ICMP type
	HTTP     []HTTPCall
	DNSNames []string
	// Denied calls are dropped by policy: only drops are emitted.
	Denied     bool
	DropReason string // POLICY_DENIED or POLICY_DENY
}

func (c Call) String() string {
	s := fmt.Sprintf("%s -> %s %s/%d", c.From, c.To, c.Proto, c.Port)
	if c.Denied {
		s += " denied(" + c.DropReason + ")"
	}
	return s
}

type workload struct {
	ns, name, kind, sa string
	labels             []string // pod labels, k8s: source, without the Cilium-added ones
	replicas           int
	egressPolicy       bool
	ingressPolicy      bool
}

var workloads = []*workload{
	{ns: "shop", name: "frontend", kind: "Deployment", sa: "frontend", labels: []string{"app.kubernetes.io/name=frontend", "app.kubernetes.io/part-of=shop"}, replicas: 3, egressPolicy: true, ingressPolicy: true},
	{ns: "shop", name: "catalog", kind: "Deployment", sa: "catalog", labels: []string{"app=catalog", "version=v1"}, replicas: 2, ingressPolicy: true},
	{ns: "shop", name: "cart", kind: "Deployment", sa: "cart", labels: []string{"app=cart"}, replicas: 2},
	{ns: "shop", name: "checkout", kind: "Deployment", sa: "checkout", labels: []string{"app=checkout"}, replicas: 2, egressPolicy: true},
	{ns: "shop", name: "redis", kind: "StatefulSet", sa: "default", labels: []string{"app.kubernetes.io/name=redis", "app.kubernetes.io/instance=shop-cache"}, replicas: 1},
	{ns: "payments", name: "payments", kind: "Deployment", sa: "payments", labels: []string{"app=payments"}, replicas: 2, ingressPolicy: true},
	{ns: "payments", name: "postgres", kind: "StatefulSet", sa: "postgres", labels: []string{"app.kubernetes.io/name=postgres"}, replicas: 1, ingressPolicy: true},
	{ns: "payments", name: "reconciler", kind: "Deployment", sa: "reconciler", labels: []string{"app=reconciler"}, replicas: 1},
	{ns: "monitoring", name: "prometheus", kind: "Deployment", sa: "prometheus", labels: []string{"app.kubernetes.io/name=prometheus", "app.kubernetes.io/component=server"}, replicas: 1},
	{ns: "kube-system", name: "coredns", kind: "Deployment", sa: "coredns", labels: []string{"k8s-app=kube-dns"}, replicas: 2},
}

func wl(ns, name string) Peer { return Peer{Namespace: ns, Workload: name} }

var (
	stripe = Peer{IP: "203.0.113.10", FQDN: "api.stripe.com"}
	images = Peer{IP: "198.51.100.20", FQDN: "images.example.com"}
	host   = Peer{Entity: "host"}
	health = Peer{Entity: "health"}
	apisrv = Peer{Entity: "kube-apiserver"}
)

var calls = []Call{
	{From: wl("shop", "frontend"), To: wl("shop", "catalog"), Proto: "TCP", Port: 8080, HTTP: []HTTPCall{{"GET", "/products"}, {"GET", "/products/42"}, {"GET", "/products/1337"}}},
	{From: wl("shop", "frontend"), To: wl("shop", "cart"), Proto: "TCP", Port: 8080},
	{From: wl("shop", "frontend"), To: wl("shop", "checkout"), Proto: "TCP", Port: 8080},
	{From: wl("shop", "cart"), To: wl("shop", "redis"), Proto: "TCP", Port: 6379},
	{From: wl("shop", "checkout"), To: wl("payments", "payments"), Proto: "TCP", Port: 8443},
	{From: wl("shop", "checkout"), To: stripe, Proto: "TCP", Port: 443},
	{From: wl("shop", "catalog"), To: images, Proto: "TCP", Port: 443},
	{From: wl("payments", "payments"), To: wl("payments", "postgres"), Proto: "TCP", Port: 5432},
	{From: wl("payments", "reconciler"), To: apisrv, Proto: "TCP", Port: 6443},
	{From: wl("monitoring", "prometheus"), To: wl("shop", "frontend"), Proto: "TCP", Port: 9090},
	{From: wl("monitoring", "prometheus"), To: wl("payments", "payments"), Proto: "TCP", Port: 9090},
	{From: host, To: wl("shop", "frontend"), Proto: "TCP", Port: 8080},
	{From: host, To: wl("payments", "payments"), Proto: "TCP", Port: 8443},
	{From: host, To: health, Proto: "TCP", Port: 4240},
	{From: host, To: health, Proto: "ICMPv4", Port: 8},
	{From: wl("shop", "frontend"), To: wl("kube-system", "coredns"), Proto: "UDP", Port: 53, DNSNames: []string{"cart.shop.svc.cluster.local", "catalog.shop.svc.cluster.local", "checkout.shop.svc.cluster.local"}},
	{From: wl("shop", "cart"), To: wl("kube-system", "coredns"), Proto: "UDP", Port: 53, DNSNames: []string{"redis.shop.svc.cluster.local"}},
	{From: wl("shop", "checkout"), To: wl("kube-system", "coredns"), Proto: "UDP", Port: 53, DNSNames: []string{"api.stripe.com", "payments.payments.svc.cluster.local"}},
	{From: wl("shop", "checkout"), To: wl("kube-system", "coredns"), Proto: "TCP", Port: 53},
	{From: wl("shop", "catalog"), To: wl("kube-system", "coredns"), Proto: "UDP", Port: 53, DNSNames: []string{"images.example.com"}},
	{From: wl("payments", "payments"), To: wl("kube-system", "coredns"), Proto: "UDP", Port: 53, DNSNames: []string{"postgres.payments.svc.cluster.local"}},
	{From: wl("shop", "catalog"), To: wl("payments", "postgres"), Proto: "TCP", Port: 5432, Denied: true, DropReason: "POLICY_DENIED"},
	{From: wl("shop", "frontend"), To: wl("payments", "payments"), Proto: "TCP", Port: 8443, Denied: true, DropReason: "POLICY_DENY"},
}

// Topology returns every connection the demo app makes, sorted.
func Topology() []Call {
	out := slices.Clone(calls)
	slices.SortFunc(out, func(a, b Call) int { return strings.Compare(a.String(), b.String()) })
	return out
}
