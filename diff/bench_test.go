package diff

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/cilium/pkg/policy/api"
	"sigs.k8s.io/yaml"

	"github.com/cnpgen/cnpgen/learn"
)

// The benchmark cluster: namespaces of benchAppsPerNS workloads each, one
// security identity per workload. Namespaces come in groups of
// benchGroup whose frontends call each other's APIs; a larger cluster
// adds groups, so the policies of the first namespaces do not change.
const (
	benchNamespaces   = 200  // 2000 workloads, 5001 policies
	benchNamespaces10 = 2000 // 20000 workloads, 50001 policies
	benchGroup        = 200
	benchFlows        = 1_000_000
)

// benchApp is a workload of every namespace: its port and the apps of
// its namespace it calls.
type benchApp struct {
	name, tier string
	port       uint16
	calls      []string
	// internet says it calls HTTPS on the internet.
	internet bool
}

var benchApps = []benchApp{
	{name: "frontend", tier: "web", port: 8080, calls: []string{"api", "auth"}, internet: true},
	{name: "api", tier: "backend", port: 8080, calls: []string{"auth", "cart", "catalog", "orders"}},
	{name: "auth", tier: "backend", port: 9000, calls: []string{"db"}},
	{name: "cart", tier: "backend", port: 8080, calls: []string{"db", "catalog"}},
	{name: "catalog", tier: "backend", port: 8080, calls: []string{"search", "db"}},
	{name: "orders", tier: "backend", port: 8080, calls: []string{"payments", "db"}},
	{name: "payments", tier: "backend", port: 8443, calls: []string{"db"}, internet: true},
	{name: "search", tier: "data", port: 9200},
	{name: "worker", tier: "batch", port: 8080, calls: []string{"orders", "db"}, internet: true},
	{name: "db", tier: "data", port: 5432},
}

func benchNS(i int) string { return fmt.Sprintf("ns-%04d", i) }

// benchPeerNS is the namespace whose frontend calls namespace i's api.
func benchPeerNS(i int) int { return i/benchGroup*benchGroup + (i+1)%benchGroup }

// benchCallerNS is the namespace whose api namespace i's frontend calls.
func benchCallerNS(i int) int { return i/benchGroup*benchGroup + (i+benchGroup-1)%benchGroup }

func benchTeam(i int) string { return fmt.Sprintf("team-%02d", i%37) }

func benchEnv(i int) string { return []string{"prod", "staging", "dev"}[i%3] }

// benchPodLabels are the identity labels of app in namespace i, as
// Hubble prints them.
func benchPodLabels(i int, app benchApp) []string {
	ns := benchNS(i)
	return []string{
		"k8s:app=" + app.name,
		"k8s:app.kubernetes.io/name=" + app.name,
		"k8s:app.kubernetes.io/part-of=" + ns + "-shop",
		"k8s:tier=" + app.tier,
		"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=" + ns,
		"k8s:io.cilium.k8s.namespace.labels.team=" + benchTeam(i),
		"k8s:io.cilium.k8s.namespace.labels.env=" + benchEnv(i),
		"k8s:io.cilium.k8s.policy.cluster=default",
		"k8s:io.cilium.k8s.policy.serviceaccount=" + app.name,
		"k8s:io.kubernetes.pod.namespace=" + ns,
	}
}

// benchNamespaceYAML writes the 25 policies of namespace i: an ingress
// and an egress CNP per workload, four namespace-wide CNPs and a CCNP
// guardrail.
func benchNamespaceYAML(b *strings.Builder, i int) {
	ns := benchNS(i)
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	ports := func(port uint16, proto string) string {
		return fmt.Sprintf("    toPorts:\n    - ports:\n      - port: \"%d\"\n        protocol: %s\n", port, proto)
	}
	callers := map[string][]string{}
	for _, a := range benchApps {
		for _, c := range a.calls {
			callers[c] = append(callers[c], a.name)
		}
	}
	for _, a := range benchApps {
		// Ingress.
		fmt.Fprintf(b, "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: %s-ingress\n  namespace: %s\nspec:\n  endpointSelector:\n    matchLabels:\n      app: %s\n  ingress:\n", a.name, ns, a.name)
		if cs := callers[a.name]; len(cs) > 0 {
			b.WriteString("  - fromEndpoints:\n")
			for _, c := range cs {
				fmt.Fprintf(b, "    - matchLabels:\n        app: %s\n", c)
			}
			b.WriteString(ports(a.port, "TCP"))
		}
		switch a.name {
		case "frontend":
			b.WriteString("  - fromEntities:\n    - world\n" + ports(a.port, "TCP"))
		case "api":
			fmt.Fprintf(b, "  - fromEndpoints:\n    - matchLabels:\n        io.kubernetes.pod.namespace: %s\n        app: frontend\n", benchNS(benchPeerNS(i)))
			b.WriteString(ports(a.port, "TCP"))
		default:
			if len(callers[a.name]) == 0 {
				b.WriteString("  - {}\n") // nothing calls it: deny all
			}
		}
		if rng.IntN(4) == 0 {
			b.WriteString("  ingressDeny:\n  - fromEntities:\n    - world\n" + ports(a.port, "TCP"))
		}
		// Egress.
		fmt.Fprintf(b, "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: %s-egress\n  namespace: %s\nspec:\n  endpointSelector:\n    matchLabels:\n      app: %s\n  egress:\n", a.name, ns, a.name)
		for _, c := range a.calls {
			fmt.Fprintf(b, "  - toEndpoints:\n    - matchLabels:\n        app: %s\n", c)
			b.WriteString(ports(benchAppByName(c).port, "TCP"))
		}
		if a.name == "frontend" {
			fmt.Fprintf(b, "  - toEndpoints:\n    - matchLabels:\n        io.kubernetes.pod.namespace: %s\n        app: api\n", benchNS(benchCallerNS(i)))
			b.WriteString(ports(8080, "TCP"))
		}
		b.WriteString(`  - toEndpoints:
    - matchLabels:
        io.kubernetes.pod.namespace: kube-system
        k8s-app: kube-dns
    toPorts:
    - ports:
      - port: "53"
        protocol: UDP
      - port: "53"
        protocol: TCP
      rules:
        dns:
        - matchPattern: "*"
`)
		if a.internet {
			b.WriteString("  - toCIDRSet:\n    - cidr: 0.0.0.0/0\n      except:\n      - 10.0.0.0/8\n      - 172.16.0.0/12\n      - 192.168.0.0/16\n" + ports(443, "TCP"))
		}
		if a.name == "payments" {
			b.WriteString("  - toFQDNs:\n    - matchName: api.stripe.com\n" + ports(443, "TCP"))
		}
		b.WriteString("  egressDeny:\n  - toCIDR:\n    - 169.254.169.254/32\n")
	}
	// Namespace-wide.
	fmt.Fprintf(b, `---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-monitoring
  namespace: %[1]s
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints:
    - matchLabels:
        io.kubernetes.pod.namespace: monitoring
        app: prometheus
    toPorts:
    - ports:
      - port: "9090"
        protocol: TCP
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: deny-ssh
  namespace: %[1]s
spec:
  endpointSelector: {}
  ingressDeny:
  - fromEntities:
    - world
    toPorts:
    - ports:
      - port: "22"
        protocol: TCP
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-health
  namespace: %[1]s
spec:
  endpointSelector: {}
  ingress:
  - fromEntities:
    - health
    - remote-node
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: batch-egress
  namespace: %[1]s
spec:
  endpointSelector:
    matchLabels:
      tier: batch
  egress:
  - toEntities:
    - world
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: %[1]s-guardrail
spec:
  endpointSelector:
    matchLabels:
      io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name: %[1]s
  egressDeny:
  - toCIDRSet:
    - cidr: 100.64.0.0/10
  ingressDeny:
  - fromEntities:
    - world
    toPorts:
    - ports:
      - port: "5432"
        protocol: TCP
`, ns)
}

func benchAppByName(name string) benchApp {
	for _, a := range benchApps {
		if a.name == name {
			return a
		}
	}
	panic(name)
}

const benchClusterYAML = `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: kube-dns
spec:
  endpointSelector:
    matchLabels:
      io.kubernetes.pod.namespace: kube-system
      k8s-app: kube-dns
  ingress:
  - fromEndpoints:
    - {}
    toPorts:
    - ports:
      - port: "53"
        protocol: ANY
`

// benchLoadNamespaces generates the policies of namespaces [from, to)
// and reads them with Load, on every CPU.
func benchLoadNamespaces(b *testing.B, from, to int) []*Policy {
	return benchNamespacesWith(b, from, to, Load)
}

// benchDecodeNamespaces generates the same policies but decodes them
// straight into Cilium's rule type, skipping what makes Load slow (three
// YAML passes and the CRD schema): 45k policies through Load would take
// half a minute. NewEvaluator still sanitizes and compiles them.
func benchDecodeNamespaces(b *testing.B, from, to int) []*Policy {
	return benchNamespacesWith(b, from, to, benchDecode)
}

func benchDecode(name string, data []byte) ([]*Policy, error) {
	var out []*Policy
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec *api.Rule `json:"spec"`
		}
		if err := yaml.UnmarshalStrict([]byte(strings.TrimPrefix(doc, "---\n")), &obj, yaml.DisallowUnknownFields); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if obj.Kind == "" {
			continue
		}
		out = append(out, &Policy{
			Kind: obj.Kind, Namespace: obj.Metadata.Namespace, Name: obj.Metadata.Name,
			Source: fmt.Sprintf("%s: document %d", name, i), Rules: api.Rules{obj.Spec},
		})
	}
	return out, nil
}

func benchNamespacesWith(b *testing.B, from, to int, load func(string, []byte) ([]*Policy, error)) []*Policy {
	const chunk = 20
	n := (to - from + chunk - 1) / chunk
	parts := make([][]*Policy, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for c := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var y strings.Builder
			lo := from + c*chunk
			for i := lo; i < min(lo+chunk, to); i++ {
				benchNamespaceYAML(&y, i)
			}
			parts[c], errs[c] = load(fmt.Sprintf("bench-%d.yaml", lo), []byte(y.String()))
		})
	}
	wg.Wait()
	var out []*Policy
	for c := range n {
		if errs[c] != nil {
			b.Fatal(errs[c])
		}
		out = append(out, parts[c]...)
	}
	return out
}

type benchFixture struct {
	small, large   *Evaluator
	nSmall, nLarge int
	reqs           []*Request
	setup          time.Duration
}

// newBenchFixture loads the policies and builds the evaluators and the
// flows.
func newBenchFixture(b *testing.B) *benchFixture {
	start := time.Now()
	global, err := Load("bench-cluster.yaml", []byte(benchClusterYAML))
	if err != nil {
		b.Fatal(err)
	}
	small := append(global, benchLoadNamespaces(b, 0, benchNamespaces)...)
	large := append(small[:len(small):len(small)], benchDecodeNamespaces(b, benchNamespaces, benchNamespaces10)...)
	f := &benchFixture{nSmall: len(small), nLarge: len(large)}
	if f.small, err = NewEvaluator(small, Options{ClusterName: "default"}); err != nil {
		b.Fatal(err)
	}
	if f.large, err = NewEvaluator(large, Options{ClusterName: "default"}); err != nil {
		b.Fatal(err)
	}
	f.reqs = benchRequests(benchFlows)
	f.setup = time.Since(start)
	return f
}

// benchRequests generates n connections among the workloads of the
// first benchNamespaces namespaces: calls along the call graph (most
// allowed), random pod pairs (mostly denied), frontends calling the api
// of the next namespace, HTTPS to the internet and DNS to kube-dns.
func benchRequests(n int) []*Request {
	rng := rand.New(rand.NewPCG(1, 2))
	pods := make([][]*Identity, benchNamespaces)
	for i := range pods {
		for _, a := range benchApps {
			pods[i] = append(pods[i], NewIdentity(benchPodLabels(i, a), netip.Addr{}, nil))
		}
	}
	kubeDNS := NewIdentity([]string{
		"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=kube-system",
		"k8s:io.cilium.k8s.policy.cluster=default",
		"k8s:io.cilium.k8s.policy.serviceaccount=coredns",
		"k8s:io.kubernetes.pod.namespace=kube-system",
		"k8s:k8s-app=kube-dns",
	}, netip.Addr{}, nil)
	prometheus := NewIdentity([]string{
		"k8s:app=prometheus",
		"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=monitoring",
		"k8s:io.cilium.k8s.policy.cluster=default",
		"k8s:io.cilium.k8s.policy.serviceaccount=prometheus",
		"k8s:io.kubernetes.pod.namespace=monitoring",
	}, netip.Addr{}, nil)
	var external []*Identity
	for range 4096 {
		var ip netip.Addr
		switch rng.IntN(20) {
		case 0:
			ip = netip.AddrFrom4([4]byte{10, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		case 1:
			ip = netip.MustParseAddr("169.254.169.254")
		default:
			ip = netip.AddrFrom4([4]byte{byte(1 + rng.IntN(99)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
		}
		external = append(external, NewIdentity([]string{"cidr:" + ip.String() + "/32", "reserved:world"}, ip, nil))
	}
	appIndex := map[string]int{}
	for j, a := range benchApps {
		appIndex[a.name] = j
	}
	reqs := make([]*Request, 0, n)
	for range n {
		ns := rng.IntN(benchNamespaces)
		j := rng.IntN(len(benchApps))
		src, app := pods[ns][j], benchApps[j]
		var r *Request
		switch p := rng.IntN(100); {
		case p < 55 && len(app.calls) > 0: // along the call graph
			callee := app.calls[rng.IntN(len(app.calls))]
			r = &Request{Src: src, Dst: pods[ns][appIndex[callee]], Proto: learn.ProtoTCP, Port: benchAppByName(callee).port}
		case p < 65: // any pair, often denied
			k := rng.IntN(len(benchApps))
			r = &Request{Src: src, Dst: pods[rng.IntN(benchNamespaces)][k], Proto: learn.ProtoTCP, Port: benchApps[k].port}
		case p < 70: // frontend to the api of the next namespace of its group
			r = &Request{Src: pods[ns][appIndex["frontend"]], Dst: pods[benchCallerNS(ns)][appIndex["api"]], Proto: learn.ProtoTCP, Port: 8080}
		case p < 85: // the internet
			port := uint16(443)
			if rng.IntN(5) == 0 {
				port = 80
			}
			r = &Request{Src: src, Dst: external[rng.IntN(len(external))], Proto: learn.ProtoTCP, Port: port}
		case p < 98: // DNS
			r = &Request{Src: src, Dst: kubeDNS, Proto: learn.ProtoUDP, Port: 53}
			if rng.IntN(2) == 0 {
				r.DNSQuery = benchApps[rng.IntN(len(benchApps))].name + "." + benchNS(ns) + ".svc.cluster.local."
			}
		default: // scraping
			r = &Request{Src: prometheus, Dst: src, Proto: learn.ProtoTCP, Port: 9090}
		}
		reqs = append(reqs, r)
	}
	return reqs
}

func benchEvaluateAll(ev *Evaluator, reqs []*Request) (allowed int) {
	for _, r := range reqs {
		if ev.Evaluate(r).Allowed {
			allowed++
		}
	}
	return allowed
}

// BenchmarkEvaluate evaluates 1M synthetic flows (2000 workloads in 200
// namespaces) against 5001 policies and reports flows/s, and as
// x-10x-policies the time the same flows take against 10x the policies
// (2000 namespaces' worth; the extra policies select none of the flows'
// endpoints) over the time against the 5k. Both are measured in the same
// run, interleaved in chunks of flows so that the machine's drift hits
// both alike.
func BenchmarkEvaluate(b *testing.B) {
	f := benchFixtureFor(b)
	// Warm both: the first evaluation of an identity computes which
	// rules select it. A prefix of the flows meets every identity.
	benchEvaluateAll(f.small, f.reqs[:len(f.reqs)/5])
	benchEvaluateAll(f.large, f.reqs[:len(f.reqs)/5])

	const chunk = 50_000
	var small, large time.Duration
	var allowedSmall, allowedLarge int
	runtime.GC()
	for i := 0; i < len(f.reqs); i += chunk {
		part := f.reqs[i:min(i+chunk, len(f.reqs))]
		run := func(ev *Evaluator, total *time.Duration, allowed *int) {
			t := time.Now()
			*allowed += benchEvaluateAll(ev, part)
			*total += time.Since(t)
		}
		if i/chunk%2 == 0 {
			run(f.small, &small, &allowedSmall)
			run(f.large, &large, &allowedLarge)
		} else {
			run(f.large, &large, &allowedLarge)
			run(f.small, &small, &allowedSmall)
		}
	}
	if allowedSmall != allowedLarge {
		b.Fatalf("%d flows allowed by the 5k policies, %d by the 50k: the extra policies must not change verdicts", allowedSmall, allowedLarge)
	}
	if allowedSmall == 0 || allowedSmall == len(f.reqs) {
		b.Fatalf("%d of %d flows allowed: the mix should have both", allowedSmall, len(f.reqs))
	}

	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	start := time.Now()
	iters := 0
	for b.Loop() {
		benchEvaluateAll(f.small, f.reqs)
		iters++
	}
	per := time.Since(start) / time.Duration(iters)
	b.StopTimer()
	b.Logf("setup %v: %d and %d policies, %d flows, %d allowed; interleaved: %v with 5k policies, %v with 50k",
		f.setup.Round(time.Millisecond), f.nSmall, f.nLarge, len(f.reqs), allowedSmall,
		small.Round(time.Millisecond), large.Round(time.Millisecond))
	b.ReportMetric(float64(len(f.reqs))/per.Seconds(), "flows/s")
	b.ReportMetric(float64(large)/float64(small), "x-10x-policies")
}

var (
	benchMu     sync.Mutex
	benchCached *benchFixture
)

// benchFixtureFor builds the fixture once: the testing package may call a
// benchmark function several times.
func benchFixtureFor(b *testing.B) *benchFixture {
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchCached == nil {
		benchCached = newBenchFixture(b)
	}
	return benchCached
}
