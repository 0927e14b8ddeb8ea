package diff

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cnpgen/cnpgen/learn"
)

// The tests below load policies as users write them and check the verdict
// of each end of a connection. A Result is described as
//
//	<decision> [<policy name>] <rule> [l7] [unresolved]
//
// for example "allowed web spec.ingress[0]", "denied web default-deny l7",
// "none not-enforced" or "allowed allow-localhost".

// evalCheck is one connection and the verdict Cilium gives it. An empty
// egress or ingress is not compared. why says where Cilium decides so,
// for checks that once failed.
type evalCheck struct {
	name    string
	req     *Request
	allowed bool
	egress  string
	ingress string
	why     string
}

// evalScenario is a set of policies (and the cluster state they need) and
// connections checked against them.
type evalScenario struct {
	name     string
	policies string
	cluster  *Cluster
	checks   []evalCheck
}

func runScenarios(t *testing.T, scenarios []evalScenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			ev := newTestEvaluator(t, sc.policies, sc.cluster)
			for _, c := range sc.checks {
				t.Run(c.name, func(t *testing.T) {
					v := evaluateNoPanic(t, ev, c.req)
					got := verdictSummary{Allowed: v.Allowed, Egress: describe(v.Egress), Ingress: describe(v.Ingress)}
					want := verdictSummary{Allowed: c.allowed, Egress: c.egress, Ingress: c.ingress}
					if want.Egress == "" {
						want.Egress = got.Egress
					}
					if want.Ingress == "" {
						want.Ingress = got.Ingress
					}
					if d := cmp.Diff(want, got); d != "" {
						t.Errorf("verdict (-want +got):\n%s\negress unresolved: %q\ningress unresolved: %q",
							d, v.Egress.Unresolved, v.Ingress.Unresolved)
					}
				})
			}
		})
	}
}

// evaluateNoPanic reports a panic of Evaluate as the check's failure.
func evaluateNoPanic(t *testing.T, ev *Evaluator, req *Request) (v Verdict) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Evaluate panicked: %v", r)
		}
	}()
	return ev.Evaluate(req)
}

type verdictSummary struct {
	Allowed         bool
	Egress, Ingress string
}

func describe(r Result) string {
	parts := []string{string(r.Decision)}
	if r.Policy != nil {
		parts = append(parts, r.Policy.Name)
	}
	parts = append(parts, r.Rule)
	if r.L7 {
		parts = append(parts, "l7")
	}
	if len(r.Unresolved) > 0 {
		parts = append(parts, "unresolved")
	}
	return strings.Join(parts, " ")
}

func newTestEvaluator(t testing.TB, policies string, cluster *Cluster) *Evaluator {
	t.Helper()
	ps, err := Load("test.yaml", []byte(policies))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := NewEvaluator(ps, Options{ClusterName: "default", Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// podLabels are a pod's identity labels as Hubble prints them.
func podLabels(ns string, lbls ...string) []string {
	out := []string{
		"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + ns,
		"k8s:io.cilium.k8s.policy.cluster=default",
		"k8s:io.kubernetes.pod.namespace=" + ns,
	}
	for _, l := range lbls {
		out = append(out, "k8s:"+l)
	}
	return out
}

// pod is a pod of app in namespace ns; extra are more k8s labels
// ("io.cilium.k8s.namespace.labels.team=payments" for a namespace label).
func pod(ns, app string, extra ...string) *Identity {
	lbls := append([]string{"app=" + app, "io.cilium.k8s.policy.serviceaccount=" + app}, extra...)
	return NewIdentity(podLabels(ns, lbls...), netip.Addr{}, nil)
}

// named gives a pod identity its pod name, for named ports.
func named(id *Identity, podName string) *Identity {
	c := *id
	c.Pod = podName
	return &c
}

// world is an external address with its CIDR identity.
func world(ip string) *Identity {
	return NewIdentity([]string{"cidr:" + ip + "/32", "reserved:world"}, netip.MustParseAddr(ip), nil)
}

func reserved(names ...string) *Identity {
	var lbls []string
	for _, n := range names {
		lbls = append(lbls, "reserved:"+n)
	}
	return NewIdentity(lbls, netip.Addr{}, nil)
}

func tcp(src, dst *Identity, port uint16) *Request {
	return &Request{Src: src, Dst: dst, Proto: learn.ProtoTCP, Port: port}
}

func udp(src, dst *Identity, port uint16) *Request {
	return &Request{Src: src, Dst: dst, Proto: learn.ProtoUDP, Port: port}
}

func sctp(src, dst *Identity, port uint16) *Request {
	return &Request{Src: src, Dst: dst, Proto: learn.ProtoSCTP, Port: port}
}

func icmp4(src, dst *Identity, typ uint16) *Request {
	return &Request{Src: src, Dst: dst, Proto: learn.ProtoICMPv4, Port: typ}
}

func icmp6(src, dst *Identity, typ uint16) *Request {
	return &Request{Src: src, Dst: dst, Proto: learn.ProtoICMPv6, Port: typ}
}

func httpReq(src, dst *Identity, port uint16, method, host, path string) *Request {
	r := tcp(src, dst, port)
	r.HTTP = &HTTPRequest{Method: method, Host: host, Path: path}
	return r
}

func dnsQuery(src, dst *Identity, name string) *Request {
	r := udp(src, dst, 53)
	r.DNSQuery = name
	return r
}

var (
	shopWeb     = pod("shop", "web")
	shopClient  = pod("shop", "client")
	shopDB      = pod("shop", "db")
	otherClient = pod("other", "client")
	otherWeb    = pod("other", "web")
	payClient   = pod("pay", "client", "io.cilium.k8s.namespace.labels.team=payments")
	payDB       = pod("pay", "db", "io.cilium.k8s.namespace.labels.team=payments")
	kubeDNS     = NewIdentity(podLabels("kube-system", "k8s-app=kube-dns", "io.cilium.k8s.policy.serviceaccount=coredns"), netip.Addr{}, nil)
	host        = reserved("host")
	remoteNode  = reserved("remote-node")
	health      = reserved("health")
	initEP      = reserved("init")
)

func TestEvalNetworkPolicy(t *testing.T) {
	runScenarios(t, []evalScenario{
		{
			name: "empty podSelector with policyTypes Ingress denies ingress to every pod of its namespace",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Ingress]
`,
			checks: []evalCheck{
				{name: "pod in the namespace", req: tcp(shopClient, shopWeb, 80), allowed: false,
					egress: "none not-enforced", ingress: "denied deny-all default-deny"},
				{name: "another app in the namespace", req: tcp(shopClient, shopDB, 5432), allowed: false,
					ingress: "denied deny-all default-deny"},
				{name: "pod in another namespace is not selected", req: tcp(shopClient, otherWeb, 80), allowed: true,
					ingress: "none not-enforced"},
				{name: "host is still allowed", req: tcp(host, shopWeb, 80), allowed: true,
					egress: "none not-an-endpoint", ingress: "allowed allow-localhost"},
			},
		},
		{
			name: "ingress [{}] without from allows every peer",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-all
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - {}
`,
			checks: []evalCheck{
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: true, ingress: "allowed allow-all spec.ingress[0]"},
				{name: "pod in another namespace", req: udp(otherClient, shopWeb, 53), allowed: true, ingress: "allowed allow-all spec.ingress[0]"},
				{name: "remote node", req: tcp(remoteNode, shopWeb, 10250), allowed: true, ingress: "allowed allow-all spec.ingress[0]"},
				{name: "unselected pod", req: tcp(shopClient, shopDB, 5432), allowed: true, ingress: "none not-enforced"},
			},
		},
		{
			name: "podSelector peer selects only the policy's namespace",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-client
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: client
`,
			checks: []evalCheck{
				{name: "client in the namespace", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed from-client spec.ingress[0].from[0]"},
				{name: "client in another namespace", req: tcp(otherClient, shopWeb, 80), allowed: false, ingress: "denied from-client default-deny"},
				{name: "other app", req: tcp(shopDB, shopWeb, 80), allowed: false, ingress: "denied from-client default-deny"},
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied from-client default-deny"},
			},
		},
		{
			name: "namespaceSelector selects pods by their namespace's labels",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-payments
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: payments
`,
			checks: []evalCheck{
				{name: "any pod of a labelled namespace", req: tcp(payDB, shopWeb, 80), allowed: true, ingress: "allowed from-payments spec.ingress[0].from[0]"},
				{name: "pod of the policy's own unlabelled namespace", req: tcp(shopClient, shopWeb, 80), allowed: false, ingress: "denied from-payments default-deny"},
				{name: "world", req: tcp(world("10.1.2.3"), shopWeb, 80), allowed: false, ingress: "denied from-payments default-deny"},
			},
		},
		{
			name: "empty namespaceSelector selects pods of all namespaces and nothing else",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: from-all-namespaces
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector: {}
`,
			checks: []evalCheck{
				{name: "pod in another namespace", req: tcp(otherClient, shopWeb, 80), allowed: true, ingress: "allowed from-all-namespaces spec.ingress[0].from[0]"},
				{name: "pod in the same namespace", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed from-all-namespaces spec.ingress[0].from[0]"},
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied from-all-namespaces default-deny"},
				{name: "remote node", req: tcp(remoteNode, shopWeb, 80), allowed: false, ingress: "denied from-all-namespaces default-deny"},
				{name: "health", req: tcp(health, shopWeb, 80), allowed: false, ingress: "denied from-all-namespaces default-deny"},
				{name: "pod of another cluster", req: tcp(NewIdentity([]string{
					"k8s:app=client", "k8s:io.cilium.k8s.policy.cluster=east", "k8s:io.kubernetes.pod.namespace=shop",
				}, netip.Addr{}, nil), shopWeb, 80), allowed: false, ingress: "denied from-all-namespaces default-deny"},
			},
		},
		{
			name: "namespaceSelector and podSelector in one peer must both match",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: payments-client
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: payments
      podSelector:
        matchLabels:
          app: client
`,
			checks: []evalCheck{
				{name: "client in a labelled namespace", req: tcp(payClient, shopWeb, 80), allowed: true, ingress: "allowed payments-client spec.ingress[0].from[0]"},
				{name: "other app in a labelled namespace", req: tcp(payDB, shopWeb, 80), allowed: false, ingress: "denied payments-client default-deny"},
				{name: "client in an unlabelled namespace", req: tcp(otherClient, shopWeb, 80), allowed: false, ingress: "denied payments-client default-deny"},
				{name: "client in the policy's namespace", req: tcp(shopClient, shopWeb, 80), allowed: false, ingress: "denied payments-client default-deny"},
			},
		},
		{
			name: "two peers are alternatives",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: either
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: payments
    - podSelector:
        matchLabels:
          app: client
`,
			checks: []evalCheck{
				{name: "first peer", req: tcp(payDB, shopWeb, 80), allowed: true, ingress: "allowed either spec.ingress[0].from[0]"},
				{name: "second peer", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed either spec.ingress[0].from[1]"},
				{name: "neither", req: tcp(otherClient, shopWeb, 80), allowed: false, ingress: "denied either default-deny"},
			},
		},
		{
			name: "ipBlock with except selects external addresses only",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: to-private
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/8
        except:
        - 10.96.0.0/12
`,
			checks: []evalCheck{
				{name: "address in the block", req: tcp(shopWeb, world("10.1.2.3"), 443), allowed: true, egress: "allowed to-private spec.egress[0].to[0]"},
				{name: "address in the except", req: tcp(shopWeb, world("10.96.0.1"), 443), allowed: false, egress: "denied to-private default-deny"},
				{name: "last address of the except", req: tcp(shopWeb, world("10.111.255.255"), 443), allowed: false, egress: "denied to-private default-deny"},
				{name: "first address after the except", req: tcp(shopWeb, world("10.112.0.0"), 443), allowed: true, egress: "allowed to-private spec.egress[0].to[0]"},
				{name: "address outside the block", req: tcp(shopWeb, world("192.168.1.1"), 443), allowed: false, egress: "denied to-private default-deny"},
				{name: "pod whose address is in the block", req: tcp(shopWeb,
					NewIdentity(podLabels("shop", "app=db"), netip.MustParseAddr("10.0.1.5"), nil), 5432),
					allowed: false, egress: "denied to-private default-deny"},
				{name: "ingress is not enforced", req: tcp(world("10.1.2.3"), shopWeb, 80), allowed: true, ingress: "none not-enforced"},
			},
		},
		{
			name: "ports default to TCP; endPort ranges; a protocol without a port allows all its ports",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: ports
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: 80
    - port: 53
      protocol: UDP
    - port: 8000
      endPort: 8010
      protocol: TCP
    - protocol: SCTP
`,
			checks: []evalCheck{
				{name: "TCP 80", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed ports spec.ingress[0]"},
				{name: "UDP 80 (no protocol means TCP)", req: udp(shopClient, shopWeb, 80), allowed: false, ingress: "denied ports default-deny"},
				{name: "UDP 53", req: udp(shopClient, shopWeb, 53), allowed: true, ingress: "allowed ports spec.ingress[0]"},
				{name: "TCP 53", req: tcp(shopClient, shopWeb, 53), allowed: false, ingress: "denied ports default-deny"},
				{name: "range start", req: tcp(shopClient, shopWeb, 8000), allowed: true, ingress: "allowed ports spec.ingress[0]"},
				{name: "inside range", req: tcp(shopClient, shopWeb, 8005), allowed: true, ingress: "allowed ports spec.ingress[0]"},
				{name: "range end is inclusive", req: tcp(shopClient, shopWeb, 8010), allowed: true, ingress: "allowed ports spec.ingress[0]"},
				{name: "after range", req: tcp(shopClient, shopWeb, 8011), allowed: false, ingress: "denied ports default-deny"},
				{name: "before range", req: tcp(shopClient, shopWeb, 7999), allowed: false, ingress: "denied ports default-deny"},
				{name: "any SCTP port", req: sctp(world("1.2.3.4"), shopWeb, 9999), allowed: true, ingress: "allowed ports spec.ingress[0]"},
				{name: "ICMP is not a port", req: icmp4(shopClient, shopWeb, 8), allowed: false, ingress: "denied ports default-deny"},
			},
		},
		{
			name: "policyTypes Egress only leaves ingress unenforced",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-egress
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector:
        matchLabels:
          app: db
    ports:
    - port: 5432
`,
			checks: []evalCheck{
				{name: "allowed egress", req: tcp(shopWeb, shopDB, 5432), allowed: true,
					egress: "allowed web-egress spec.egress[0].to[0]", ingress: "none not-enforced"},
				{name: "other port", req: tcp(shopWeb, shopDB, 80), allowed: false, egress: "denied web-egress default-deny"},
				{name: "world", req: udp(shopWeb, world("8.8.8.8"), 53), allowed: false, egress: "denied web-egress default-deny"},
				{name: "ingress", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: true, ingress: "none not-enforced"},
			},
		},
		{
			name: "policyTypes Egress without egress rules denies all egress",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-egress
  namespace: shop
spec:
  podSelector: {}
  policyTypes: [Egress]
`,
			checks: []evalCheck{
				{name: "pod to pod", req: tcp(shopWeb, shopDB, 5432), allowed: false,
					egress: "denied deny-egress default-deny", ingress: "none not-enforced"},
				{name: "pod to world", req: tcp(shopWeb, world("1.1.1.1"), 443), allowed: false, egress: "denied deny-egress default-deny"},
				{name: "ingress", req: tcp(otherClient, shopWeb, 80), allowed: true, egress: "none not-enforced", ingress: "none not-enforced"},
			},
		},
		{
			name: "NetworkPolicy and CiliumNetworkPolicy selecting the same pod combine",
			policies: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np-client
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: client
    ports:
    - port: 80
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cnp-world
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEntities:
    - world
    toPorts:
    - ports:
      - port: "443"
        protocol: TCP
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`,
			checks: []evalCheck{
				{name: "NetworkPolicy allow is overridden by the CNP deny", req: tcp(shopClient, shopWeb, 80), allowed: false,
					ingress: "denied cnp-world spec.ingressDeny[0]"},
				{name: "CNP allow", req: tcp(world("1.2.3.4"), shopWeb, 443), allowed: true, ingress: "allowed cnp-world spec.ingress[0]"},
				{name: "allowed by neither", req: tcp(shopClient, shopWeb, 443), allowed: false, ingress: "denied cnp-world default-deny"},
				{name: "world on the NetworkPolicy's port", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied cnp-world default-deny"},
			},
		},
		{
			name: "a NetworkPolicy allow adds to a CNP",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cnp-world
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  enableDefaultDeny:
    ingress: false
  ingress:
  - fromEntities:
    - world
    toPorts:
    - ports:
      - port: "443"
        protocol: TCP
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np-client
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: client
`,
			checks: []evalCheck{
				{name: "NetworkPolicy allow", req: tcp(shopClient, shopWeb, 8080), allowed: true, ingress: "allowed np-client spec.ingress[0].from[0]"},
				{name: "CNP allow", req: tcp(world("1.2.3.4"), shopWeb, 443), allowed: true, ingress: "allowed cnp-world spec.ingress[0]"},
				// The CNP alone would not deny by default; the NetworkPolicy does.
				{name: "NetworkPolicy turns on default deny", req: tcp(otherClient, shopWeb, 80), allowed: false, ingress: "denied np-client default-deny"},
			},
		},
	})
}

func TestEvalNamedPorts(t *testing.T) {
	cluster := &Cluster{Pods: []Pod{
		{Namespace: "shop", Name: "web-0", Labels: map[string]string{"app": "web"}, Ports: []NamedPort{
			{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "metrics", Port: 9090},
		}},
		{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}, Ports: []NamedPort{
			{Name: "http", Port: 8081, Protocol: "TCP"},
		}},
		{Namespace: "shop", Name: "web-2", Labels: map[string]string{"app": "web"}},
		{Namespace: "kube-system", Name: "coredns-0", Labels: map[string]string{"k8s-app": "kube-dns"}, Ports: []NamedPort{
			{Name: "dns", Port: 53, Protocol: "UDP"}, {Name: "dns-tcp", Port: 53, Protocol: "TCP"},
		}},
	}}
	const cnp = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: http
        protocol: TCP
`
	const np = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
  ingress:
  - ports:
    - port: http
`
	const egress = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        io.kubernetes.pod.namespace: kube-system
        k8s-app: kube-dns
    toPorts:
    - ports:
      - port: dns
        protocol: UDP
`
	web0, web1, web2 := named(shopWeb, "web-0"), named(shopWeb, "web-1"), named(shopWeb, "web-2")
	coredns := named(kubeDNS, "coredns-0")
	runScenarios(t, []evalScenario{
		{
			name: "CNP ingress named port resolves to the destination pod's container port", policies: cnp, cluster: cluster,
			checks: []evalCheck{
				{name: "port of web-0", req: tcp(shopClient, web0, 8080), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "other named port of web-0", req: tcp(shopClient, web0, 9090), allowed: false, ingress: "denied web default-deny"},
				{name: "UDP on the port of a TCP named port", req: udp(shopClient, web0, 8080), allowed: false, ingress: "denied web default-deny"},
				{name: "web-1 names another port", req: tcp(shopClient, web1, 8081), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "web-0's port on web-1", req: tcp(shopClient, web1, 8080), allowed: false, ingress: "denied web default-deny"},
				{name: "pod without the name", req: tcp(shopClient, web2, 8080), allowed: false, ingress: "denied web default-deny"},
				{name: "other peer", req: tcp(shopDB, web0, 8080), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "named port without the cluster's pods is unresolved", policies: cnp,
			checks: []evalCheck{
				{name: "not allowed, reported", req: tcp(shopClient, web0, 8080), allowed: false, ingress: "denied web default-deny unresolved"},
			},
		},
		{
			name: "NetworkPolicy named port", policies: np, cluster: cluster,
			checks: []evalCheck{
				{name: "port of web-0", req: tcp(shopClient, web0, 8080), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "port of web-1", req: tcp(otherClient, web1, 8081), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "unnamed port", req: tcp(shopClient, web0, 80), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "NetworkPolicy named port without the cluster's pods", policies: np,
			checks: []evalCheck{
				{name: "not allowed, reported", req: tcp(shopClient, web0, 8080), allowed: false, ingress: "denied web default-deny unresolved"},
			},
		},
		{
			name: "egress named port resolves on the server", policies: egress, cluster: cluster,
			checks: []evalCheck{
				{name: "UDP dns", req: udp(shopClient, coredns, 53), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "TCP 53 is dns-tcp, not dns", req: tcp(shopClient, coredns, 53), allowed: false, egress: "denied client default-deny"},
			},
		},
		{
			name: "egress named port without the cluster's pods", policies: egress,
			checks: []evalCheck{
				{name: "not allowed, reported", req: udp(shopClient, coredns, 53), allowed: false, egress: "denied client default-deny unresolved"},
			},
		},
	})
}

func TestEvalToServices(t *testing.T) {
	cluster := &Cluster{Services: []Service{
		{Namespace: "backend", Name: "api", Labels: map[string]string{"tier": "backend"}, Selector: map[string]string{"app": "api"}},
		{Namespace: "backend", Name: "legacy", Labels: map[string]string{"tier": "legacy"}},
	}}
	policy := func(service string) string {
		return `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toServices:
    - ` + service + `
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
`
	}
	api, apiOtherNS, other := pod("backend", "api"), pod("shop", "api"), pod("backend", "other")
	runScenarios(t, []evalScenario{
		{
			name: "k8sService with a selector selects the backend pods", policies: policy("k8sService: {serviceName: api, namespace: backend}"), cluster: cluster,
			checks: []evalCheck{
				{name: "backend pod", req: tcp(shopClient, api, 8080), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "backend pod, other port", req: tcp(shopClient, api, 9090), allowed: false, egress: "denied client default-deny"},
				{name: "other pod of the service's namespace", req: tcp(shopClient, other, 8080), allowed: false, egress: "denied client default-deny"},
				{name: "same labels in another namespace", req: tcp(shopClient, apiOtherNS, 8080), allowed: false, egress: "denied client default-deny"},
				{name: "world", req: tcp(shopClient, world("10.0.0.5"), 8080), allowed: false, egress: "denied client default-deny"},
			},
		},
		{
			name: "k8sService without namespace matches the name in any namespace", policies: policy("k8sService: {serviceName: api}"), cluster: cluster,
			checks: []evalCheck{
				{name: "backend pod", req: tcp(shopClient, api, 8080), allowed: true, egress: "allowed client spec.egress[0]"},
			},
		},
		{
			name: "k8sServiceSelector matches the service's labels", policies: policy("k8sServiceSelector: {namespace: backend, selector: {matchLabels: {tier: backend}}}"), cluster: cluster,
			checks: []evalCheck{
				{name: "backend pod", req: tcp(shopClient, api, 8080), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "other pod", req: tcp(shopClient, other, 8080), allowed: false, egress: "denied client default-deny"},
			},
		},
		{
			name: "toServices without the cluster's services is unresolved", policies: policy("k8sService: {serviceName: api, namespace: backend}"),
			checks: []evalCheck{
				{name: "backend pod", req: tcp(shopClient, api, 8080), allowed: false, egress: "denied client default-deny unresolved"},
			},
		},
		{
			name: "service without a selector is unresolved", policies: policy("k8sService: {serviceName: legacy, namespace: backend}"), cluster: cluster,
			checks: []evalCheck{
				{name: "backend address", req: tcp(shopClient, world("10.0.0.5"), 8080), allowed: false, egress: "denied client default-deny unresolved"},
			},
		},
		{
			// pkg/policy/k8s/service.go processRule: len(svc.Selector) == 0
			// means "no selector": the backends' addresses are used.
			name: "service with an empty selector is a service without a selector", policies: policy("k8sService: {serviceName: empty, namespace: backend}"),
			cluster: &Cluster{Services: []Service{{Namespace: "backend", Name: "empty", Selector: map[string]string{}}}},
			checks: []evalCheck{
				{name: "pod of the service's namespace", req: tcp(shopClient, other, 8080), allowed: false, egress: "denied client default-deny unresolved",
					why: "Cilium treats a Service with an empty selector as selector-less (backend CIDRs)"},
			},
		},
		{
			// pkg/policy/k8s/service.go processRule expands toServices in
			// rule.Egress only: in egressDeny they stay unresolved, and
			// pkg/policy/utils.RulesToPolicyEntries ignores them, leaving an
			// empty L3 that, with toPorts, denies every peer on those ports
			// (rule.go mergeL4Filter, l4.go createL4Filter: empty L3 is the
			// wildcard selector).
			name: "toServices in egressDeny is never expanded",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEntities:
    - all
  egressDeny:
  - toServices:
    - k8sService:
        serviceName: api
        namespace: backend
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
`,
			cluster: cluster,
			checks: []evalCheck{
				{name: "backend pod, denied port", req: tcp(shopClient, api, 8080), allowed: false, egress: "denied client spec.egressDeny[0]"},
				{name: "backend pod, other port", req: tcp(shopClient, api, 80), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "any other peer on the denied port", req: tcp(shopClient, world("1.2.3.4"), 8080), allowed: false, egress: "denied client spec.egressDeny[0]",
					why: "Cilium never expands egressDeny.toServices (service.go processRule walks rule.Egress only); the empty L3 with toPorts denies every peer on the port"},
			},
		},
	})
}

func TestEvalHTTP(t *testing.T) {
	l7 := func(name string, extraIngress string) string {
		return `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ` + name + `
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
          path: /api/.*
        - method: POST
          path: /api
        - path: /public
          host: 'shop\.example\.com'
` + extraIngress
	}
	runScenarios(t, []evalScenario{
		{
			name: "method, path and host are full-match regexes", policies: l7("web", ""),
			checks: []evalCheck{
				{name: "GET /api/v1", req: httpReq(shopClient, shopWeb, 80, "GET", "", "/api/v1"), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "GET /api does not match /api/.*", req: httpReq(shopClient, shopWeb, 80, "GET", "", "/api"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "POST /api", req: httpReq(shopClient, shopWeb, 80, "POST", "", "/api"), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "POST /apix does not match /api", req: httpReq(shopClient, shopWeb, 80, "POST", "", "/apix"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "POST /api/v1 does not match /api", req: httpReq(shopClient, shopWeb, 80, "POST", "", "/api/v1"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "PUT is no listed method", req: httpReq(shopClient, shopWeb, 80, "PUT", "", "/api/v1"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "GETX does not match GET", req: httpReq(shopClient, shopWeb, 80, "GETX", "", "/api/v1"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "any method with the host", req: httpReq(shopClient, shopWeb, 80, "DELETE", "shop.example.com", "/public"), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "other host", req: httpReq(shopClient, shopWeb, 80, "GET", "evil.example.com", "/public"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "host with a suffix", req: httpReq(shopClient, shopWeb, 80, "GET", "shop.example.com.evil", "/public"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "connection without an L7 request is allowed at L4", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "other port", req: httpReq(shopClient, shopWeb, 8080, "GET", "", "/api/v1"), allowed: false, ingress: "denied web default-deny"},
				{name: "other peer", req: httpReq(shopDB, shopWeb, 80, "GET", "", "/api/v1"), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "an L4-only rule for the same peer and port makes L7 a wildcard",
			policies: l7("web", `  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "request no L7 rule allows", req: httpReq(shopClient, shopWeb, 80, "DELETE", "", "/admin"), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "GET /api/v1", req: httpReq(shopClient, shopWeb, 80, "GET", "", "/api/v1"), allowed: true, ingress: "allowed web spec.ingress[0]"},
			},
		},
		{
			name: "an L4-only rule for another peer does not widen L7",
			policies: l7("web", `  - fromEndpoints:
    - matchLabels:
        app: db
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "restricted peer", req: httpReq(shopClient, shopWeb, 80, "DELETE", "", "/admin"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "unrestricted peer", req: httpReq(shopDB, shopWeb, 80, "DELETE", "", "/admin"), allowed: true, ingress: "allowed web spec.ingress[1]"},
			},
		},
		{
			name: "an L4-only rule for another port does not widen L7",
			policies: l7("web", `  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "8080"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "L7 port", req: httpReq(shopClient, shopWeb, 80, "DELETE", "", "/admin"), allowed: false, ingress: "denied web spec.ingress[0] l7"},
				{name: "L4 port", req: httpReq(shopClient, shopWeb, 8080, "DELETE", "", "/admin"), allowed: true, ingress: "allowed web spec.ingress[1]"},
			},
		},
		{
			name: "egress L7 under default deny",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        app: web
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
`,
			checks: []evalCheck{
				{name: "GET", req: httpReq(shopClient, shopWeb, 80, "GET", "", "/anything"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "POST", req: httpReq(shopClient, shopWeb, 80, "POST", "", "/"), allowed: false, egress: "denied client spec.egress[0] l7"},
				{name: "world", req: tcp(shopClient, world("1.2.3.4"), 443), allowed: false, egress: "denied client default-deny"},
			},
		},
		{
			name: "with enableDefaultDeny egress false L7 rules are a wildcard",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  enableDefaultDeny:
    egress: false
  egress:
  - toEndpoints:
    - matchLabels:
        app: web
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
`,
			checks: []evalCheck{
				{name: "POST", req: httpReq(shopClient, shopWeb, 80, "POST", "", "/"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "world", req: tcp(shopClient, world("1.2.3.4"), 443), allowed: true, egress: "allowed client no-default-deny"},
			},
		},
	})
}

func TestEvalDNS(t *testing.T) {
	policy := func(rules string) string {
		return `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        io.kubernetes.pod.namespace: kube-system
        k8s-app: kube-dns
    toPorts:
    - ports:
      - port: "53"
        protocol: UDP
      rules:
        dns:
` + rules
	}
	runScenarios(t, []evalScenario{
		{
			name: "matchName and matchPattern",
			policies: policy(`        - matchName: api.example.com
        - matchPattern: "*.shop.example.com"
        - matchPattern: "**.cdn.example.com"
`),
			checks: []evalCheck{
				{name: "matchName", req: dnsQuery(shopClient, kubeDNS, "api.example.com"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "matchName ignores case and the trailing dot", req: dnsQuery(shopClient, kubeDNS, "API.Example.com."), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "matchName is exact", req: dnsQuery(shopClient, kubeDNS, "www.api.example.com"), allowed: false, egress: "denied client spec.egress[0] l7"},
				{name: "other name", req: dnsQuery(shopClient, kubeDNS, "www.example.com"), allowed: false, egress: "denied client spec.egress[0] l7"},
				{name: "* matches one label", req: dnsQuery(shopClient, kubeDNS, "a.shop.example.com"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "* needs a label", req: dnsQuery(shopClient, kubeDNS, "shop.example.com"), allowed: false, egress: "denied client spec.egress[0] l7"},
				{name: "* does not match two labels", req: dnsQuery(shopClient, kubeDNS, "a.b.shop.example.com"), allowed: false, egress: "denied client spec.egress[0] l7"},
				{name: "**. matches one label", req: dnsQuery(shopClient, kubeDNS, "a.cdn.example.com"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "**. matches several labels", req: dnsQuery(shopClient, kubeDNS, "a.b.c.cdn.example.com"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "**. needs a label", req: dnsQuery(shopClient, kubeDNS, "cdn.example.com"), allowed: false, egress: "denied client spec.egress[0] l7"},
				{name: "DNS over TCP is not allowed", req: func() *Request { r := tcp(shopClient, kubeDNS, 53); r.DNSQuery = "api.example.com"; return r }(),
					allowed: false, egress: "denied client default-deny"},
				{name: "other DNS server", req: dnsQuery(shopClient, shopDB, "api.example.com"), allowed: false, egress: "denied client default-deny"},
			},
		},
		{
			name:     "matchPattern * matches every name",
			policies: policy("        - matchPattern: \"*\"\n"),
			checks: []evalCheck{
				{name: "one label", req: dnsQuery(shopClient, kubeDNS, "localhost"), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "several labels", req: dnsQuery(shopClient, kubeDNS, "a.b.example.com."), allowed: true, egress: "allowed client spec.egress[0]"},
			},
		},
	})
}

func TestEvalICMP(t *testing.T) {
	runScenarios(t, []evalScenario{
		{
			name: "icmps select ICMP types per family",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    icmps:
    - fields:
      - type: 8
        family: IPv4
      - type: EchoRequest
        family: IPv6
`,
			checks: []evalCheck{
				{name: "ICMPv4 echo request", req: icmp4(shopClient, shopWeb, 8), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "ICMPv4 timestamp", req: icmp4(shopClient, shopWeb, 13), allowed: false, ingress: "denied web default-deny"},
				{name: "ICMPv6 echo request by name", req: icmp6(shopClient, shopWeb, 128), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "ICMPv6 type 8", req: icmp6(shopClient, shopWeb, 8), allowed: false, ingress: "denied web default-deny"},
				{name: "ICMPv4 type 128", req: icmp4(shopClient, shopWeb, 128), allowed: false, ingress: "denied web default-deny"},
				{name: "TCP", req: tcp(shopClient, shopWeb, 8), allowed: false, ingress: "denied web default-deny"},
				{name: "other peer", req: icmp4(shopDB, shopWeb, 8), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "family defaults to IPv4",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  egress:
  - toEntities:
    - world
    icmps:
    - fields:
      - type: EchoRequest
`,
			checks: []evalCheck{
				{name: "ICMPv4 echo request", req: icmp4(shopWeb, world("1.1.1.1"), 8), allowed: true, egress: "allowed web spec.egress[0]"},
				{name: "ICMPv6 echo request", req: icmp6(shopWeb, NewIdentity([]string{"reserved:world"}, netip.MustParseAddr("2001:db8::1"), nil), 128),
					allowed: false, egress: "denied web default-deny"},
			},
		},
	})
}

func TestEvalInit(t *testing.T) {
	runScenarios(t, []evalScenario{
		{
			name:     "an initialising endpoint is default-deny both ways without any policy",
			policies: "",
			checks: []evalCheck{
				// Before a167a6a these panicked: decide indexed d.policies[0],
				// empty for an init endpoint that no policy selects.
				{name: "egress", req: tcp(initEP, world("1.2.3.4"), 443), allowed: false, egress: "denied default-deny"},
				{name: "ingress from a pod", req: tcp(shopClient, initEP, 80), allowed: false, egress: "none not-enforced", ingress: "denied default-deny"},
				// repository.go computePolicyEnforcementAndRules only adds the
				// allow-localhost rule "if len(rulesIngress) > 0": with no rule
				// selecting the init endpoint there is nothing but default deny.
				{name: "ingress from the host", req: tcp(host, initEP, 80), allowed: false, ingress: "denied default-deny",
					why: "Cilium synthesizes allow-localhost only when some ingress rule selects the endpoint (computePolicyEnforcementAndRules)"},
				{name: "a normal pod is unaffected", req: tcp(shopClient, shopWeb, 80), allowed: true, egress: "none not-enforced", ingress: "none not-enforced"},
			},
		},
		{
			name: "a CCNP can allow an initialising endpoint",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: init-egress
spec:
  endpointSelector:
    matchLabels:
      reserved:init: ""
  egress:
  - toEntities:
    - world
`,
			checks: []evalCheck{
				{name: "allowed egress", req: tcp(initEP, world("1.2.3.4"), 443), allowed: true, egress: "allowed init-egress spec.egress[0]"},
				{name: "other egress is still denied", req: tcp(initEP, shopWeb, 80), allowed: false, egress: "denied init-egress default-deny"},
				{name: "ingress is still denied", req: tcp(shopClient, initEP, 80), allowed: false, ingress: "denied default-deny"},
				{name: "ingress from the host is denied without an ingress rule", req: tcp(host, initEP, 80), allowed: false, ingress: "denied default-deny",
					why: "Cilium synthesizes allow-localhost only when some ingress rule selects the endpoint (computePolicyEnforcementAndRules)"},
			},
		},
	})
}

func TestEvalDeny(t *testing.T) {
	runScenarios(t, []evalScenario{
		{
			name: "a deny beats an L7 allow for the same peer and port",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`,
			checks: []evalCheck{
				{name: "allowed request is dropped", req: httpReq(shopClient, shopWeb, 80, "GET", "", "/"), allowed: false, ingress: "denied web spec.ingressDeny[0]"},
				{name: "connection is dropped", req: tcp(shopClient, shopWeb, 80), allowed: false, ingress: "denied web spec.ingressDeny[0]"},
			},
		},
		{
			name: "a broad deny beats a more specific allow",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
  ingressDeny:
  - fromEntities:
    - all
    toPorts:
    - ports:
      - port: "8080"
`,
			checks: []evalCheck{
				{name: "denied port", req: tcp(shopClient, shopWeb, 8080), allowed: false, ingress: "denied web spec.ingressDeny[0]"},
				{name: "denied port, UDP (no protocol is any)", req: udp(shopClient, shopWeb, 8080), allowed: false, ingress: "denied web spec.ingressDeny[0]"},
				{name: "other port", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed web spec.ingress[0]"},
			},
		},
		{
			name: "a deny-only policy enables default deny",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: no-world
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingressDeny:
  - fromEntities:
    - world
`,
			checks: []evalCheck{
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied no-world spec.ingressDeny[0]"},
				{name: "pod", req: tcp(shopClient, shopWeb, 80), allowed: false, ingress: "denied no-world default-deny"},
			},
		},
		{
			name: "a deny-only policy without default deny",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: no-world
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  enableDefaultDeny:
    ingress: false
  ingressDeny:
  - fromEntities:
    - world
`,
			checks: []evalCheck{
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied no-world spec.ingressDeny[0]"},
				{name: "pod", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed no-world no-default-deny"},
			},
		},
	})
}

func TestEvalCIDR(t *testing.T) {
	runScenarios(t, []evalScenario{
		{
			name: "toCIDRSet with except and toCIDR",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toCIDRSet:
    - cidr: 10.0.0.0/8
      except:
      - 10.96.0.0/12
  - toCIDR:
    - 192.168.1.10/32
    toPorts:
    - ports:
      - port: "443"
        protocol: TCP
`,
			checks: []evalCheck{
				{name: "inside the CIDR", req: tcp(shopClient, world("10.1.2.3"), 80), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "inside the except", req: tcp(shopClient, world("10.96.0.1"), 80), allowed: false, egress: "denied client default-deny"},
				{name: "end of the except", req: tcp(shopClient, world("10.111.255.255"), 80), allowed: false, egress: "denied client default-deny"},
				{name: "after the except", req: tcp(shopClient, world("10.112.0.1"), 80), allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "outside", req: tcp(shopClient, world("172.16.0.1"), 80), allowed: false, egress: "denied client default-deny"},
				{name: "toCIDR with port", req: tcp(shopClient, world("192.168.1.10"), 443), allowed: true, egress: "allowed client spec.egress[1]"},
				{name: "toCIDR other port", req: tcp(shopClient, world("192.168.1.10"), 80), allowed: false, egress: "denied client default-deny"},
				{name: "CIDR rules do not select pods", req: tcp(shopClient,
					NewIdentity(podLabels("shop", "app=web"), netip.MustParseAddr("10.0.1.5"), nil), 80),
					allowed: false, egress: "denied client default-deny"},
				{name: "world without an address", req: tcp(shopClient, reserved("world"), 80), allowed: false, egress: "denied client default-deny"},
				{name: "remote node address", req: tcp(shopClient, NewIdentity([]string{"reserved:remote-node"}, netip.MustParseAddr("10.0.0.10"), nil), 80),
					allowed: false, egress: "denied client default-deny"},
			},
		},
	})
}

func TestEvalFQDN(t *testing.T) {
	fqdnPeer := func(lbls []string, names ...string) *Identity {
		return NewIdentity(lbls, netip.MustParseAddr("203.0.113.7"), names)
	}
	runScenarios(t, []evalScenario{
		{
			name: "toFQDNs matches fqdn labels or the destination names",
			policies: `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toFQDNs:
    - matchName: api.example.com
    - matchPattern: "*.cdn.example.com"
    toPorts:
    - ports:
      - port: "443"
        protocol: TCP
`,
			checks: []evalCheck{
				{name: "fqdn label", req: tcp(shopClient, fqdnPeer([]string{"fqdn:api.example.com", "reserved:world"}), 443),
					allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "pattern label", req: tcp(shopClient, fqdnPeer([]string{"fqdn:*.cdn.example.com", "reserved:world"}), 443),
					allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "destination name without fqdn label", req: tcp(shopClient, fqdnPeer([]string{"reserved:world"}, "api.example.com"), 443),
					allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "destination name, other case, trailing dot", req: tcp(shopClient, fqdnPeer([]string{"cidr:203.0.113.7/32", "reserved:world"}, "API.example.com."), 443),
					allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "one of several names", req: tcp(shopClient, fqdnPeer([]string{"reserved:world"}, "other.example.net", "x.cdn.example.com"), 443),
					allowed: true, egress: "allowed client spec.egress[0]"},
				{name: "other name", req: tcp(shopClient, fqdnPeer([]string{"reserved:world"}, "other.example.com"), 443),
					allowed: false, egress: "denied client default-deny"},
				{name: "pattern needs a label", req: tcp(shopClient, fqdnPeer([]string{"reserved:world"}, "cdn.example.com"), 443),
					allowed: false, egress: "denied client default-deny"},
				{name: "other fqdn label", req: tcp(shopClient, fqdnPeer([]string{"fqdn:other.example.com", "reserved:world"}), 443),
					allowed: false, egress: "denied client default-deny"},
				{name: "other port", req: tcp(shopClient, fqdnPeer([]string{"reserved:world"}, "api.example.com"), 80),
					allowed: false, egress: "denied client default-deny"},
				{name: "names of in-cluster peers are ignored", req: tcp(shopClient,
					NewIdentity(podLabels("shop", "app=web"), netip.MustParseAddr("10.0.1.5"), []string{"api.example.com"}), 443),
					allowed: false, egress: "denied client default-deny"},
			},
		},
	})
}

func TestEvalEmptyPeers(t *testing.T) {
	policy := func(kind, ns, ingress string) string {
		meta := "  name: web\n"
		if ns != "" {
			meta += "  namespace: " + ns + "\n"
		}
		return `
apiVersion: cilium.io/v2
kind: ` + kind + `
metadata:
` + meta + `spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
` + ingress
	}
	runScenarios(t, []evalScenario{
		{
			name: "fromEndpoints [] selects nothing, even with ports",
			policies: policy("CiliumNetworkPolicy", "shop", `  - fromEndpoints: []
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "pod", req: tcp(shopClient, shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "fromEndpoints [{}] in a CNP selects the pods of its namespace",
			policies: policy("CiliumNetworkPolicy", "shop", `  - fromEndpoints:
    - {}
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "pod of the namespace", req: tcp(shopClient, shopWeb, 80), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "pod of another namespace", req: tcp(otherClient, shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
				{name: "remote node", req: tcp(remoteNode, shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "fromEndpoints [{}] in a CCNP selects pods of every namespace",
			policies: policy("CiliumClusterwideNetworkPolicy", "", `  - fromEndpoints:
    - {}
`),
			checks: []evalCheck{
				{name: "pod of another namespace", req: tcp(otherClient, otherWeb, 80), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "cross namespace", req: udp(payDB, shopWeb, 53), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
				{name: "health", req: tcp(health, shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name: "toPorts without a peer allows every peer",
			policies: policy("CiliumNetworkPolicy", "shop", `  - toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "pod of another namespace", req: tcp(otherClient, shopWeb, 80), allowed: true, ingress: "allowed web spec.ingress[0]"},
				{name: "other port", req: tcp(otherClient, shopWeb, 81), allowed: false, ingress: "denied web default-deny"},
			},
		},
		{
			name:     "ingress [{}] allows nothing but enables default deny",
			policies: policy("CiliumNetworkPolicy", "shop", "  - {}\n"),
			checks: []evalCheck{
				{name: "pod", req: tcp(shopClient, shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
				{name: "world", req: tcp(world("1.2.3.4"), shopWeb, 80), allowed: false, ingress: "denied web default-deny"},
				{name: "host", req: tcp(host, shopWeb, 80), allowed: true, ingress: "allowed allow-localhost"},
			},
		},
	})
}

func TestEvalHost(t *testing.T) {
	policy := func(extra string) string {
		return `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
` + extra
	}
	runScenarios(t, []evalScenario{
		{
			name: "host to pod is allowed under default deny", policies: policy(""),
			checks: []evalCheck{
				{name: "host", req: tcp(host, shopWeb, 9999), allowed: true, egress: "none not-an-endpoint", ingress: "allowed allow-localhost"},
				{name: "host that is also the apiserver", req: tcp(reserved("host", "kube-apiserver"), shopWeb, 9999), allowed: true, ingress: "allowed allow-localhost"},
				{name: "remote node is not", req: tcp(remoteNode, shopWeb, 9999), allowed: false, ingress: "denied web default-deny"},
				{name: "unselected pod", req: tcp(host, shopDB, 9999), allowed: true, ingress: "none not-enforced"},
			},
		},
		{
			name: "an ingressDeny for the host entity beats allow-localhost",
			policies: policy(`  ingressDeny:
  - fromEntities:
    - host
    toPorts:
    - ports:
      - port: "9999"
        protocol: TCP
`),
			checks: []evalCheck{
				{name: "denied port", req: tcp(host, shopWeb, 9999), allowed: false, ingress: "denied web spec.ingressDeny[0]"},
				{name: "other port", req: tcp(host, shopWeb, 80), allowed: true, ingress: "allowed allow-localhost"},
			},
		},
		{
			name: "host without default deny",
			policies: policy(`  enableDefaultDeny:
    ingress: false
`),
			checks: []evalCheck{
				{name: "host", req: tcp(host, shopWeb, 9999), allowed: true, ingress: "allowed web no-default-deny"},
			},
		},
	})
}

func TestEvalHTTPHeaders(t *testing.T) {
	ev := newTestEvaluator(t, `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http:
        - method: GET
          headers: ["X-Token: s3cret", "X-Trace"]
`, nil)
	src, dst := pod("shop", "web"), pod("shop", "api")
	for _, tc := range []struct {
		name       string
		headers    map[string]string
		allowed    bool
		unresolved bool
	}{
		{"both headers", map[string]string{"x-token": "s3cret", "x-trace": "1"}, true, false},
		{"wrong value", map[string]string{"x-token": "nope", "x-trace": "1"}, false, false},
		{"missing header", map[string]string{"x-token": "s3cret"}, false, false},
		{"headers not observed", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ev.Evaluate(&Request{Src: src, Dst: dst, Proto: learn.ProtoTCP, Port: 8080,
				HTTP: &HTTPRequest{Method: "GET", Path: "/", Headers: tc.headers}})
			if v.Allowed != tc.allowed || (len(v.Ingress.Unresolved) > 0) != tc.unresolved {
				t.Errorf("allowed %v unresolved %v, want %v %v", v.Allowed, v.Ingress.Unresolved, tc.allowed, tc.unresolved)
			}
		})
	}
}
