package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cnpgen/cnpgen/learn"
)

// fuzzSeedPolicies returns the policy files of the first conformance
// cases.
func fuzzSeedPolicies(f *testing.F) map[string][]byte {
	f.Helper()
	files, err := filepath.Glob("../testdata/conformance/cilium-l3l4/case-000*/policies.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed policies: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out[p] = data
	}
	return out
}

// aliasBomb is a "billion laughs" document: levels of width references to
// the level below.
func aliasBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [\"lol\"]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := range width {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: bomb}\nspec: {endpointSelector: {}, description: *a" + fmt.Sprint(levels) + "}\n")
	return b.String()
}

// nestedLists is a List holding a List holding ... depth times.
func nestedLists(depth int) string {
	return strings.Repeat("{kind: List, items: [", depth) + "{kind: ConfigMap}" + strings.Repeat("]}", depth)
}

var brokenYAML = []string{
	"",
	"---\n---\n",
	"a: [",
	"kind: CiliumNetworkPolicy\nspec: [\n",
	"kind:\tCiliumNetworkPolicy\n",
	"\xff\xfe\x00k\x00i\x00n\x00d",
	"- a\n- b\n",
	"kind: List\nitems: [1, \"x\", null, []]\n",
	"kind: List\nitems:\n- kind: CiliumNetworkPolicy\n  metadata: {name: x}\n",
	"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec: {endpointSelector: {matchLabels: {'a:b:c': x}}}\n",
	"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec: {endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: \"80\", protocol: TCP}], rules: {http: [{path: \"[\"}]}}]}]}\n",
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\nspec: {podSelector: {}, ingress: [{ports: [{port: 80, protocol: ICMP}]}]}\n",
	"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\nspec: {podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/33}}]}]}\n",
	"kind: CiliumClusterwideNetworkPolicy\nmetadata: {name: a}\nspecs: []\n",
	"a: &a b\nc: *a\nkind: *a\n",
	"a: *undefined\n",
	"--- # comment\nkind: ConfigMap\n--- \n...\n",
	aliasBomb(9, 9),
	aliasBomb(6, 30),
	nestedLists(3),
}

// FuzzLoad feeds arbitrary bytes to Load: it must not panic, must finish
// in time roughly linear in the input, must be deterministic, and whatever
// it returns must be well formed and safe to compile.
func FuzzLoad(f *testing.F) {
	for _, data := range fuzzSeedPolicies(f) {
		f.Add(data)
	}
	for _, s := range brokenYAML {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		ps, err := Load("fuzz.yaml", data)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Load took %v for %d bytes", d, len(data))
		}
		var le *LoadError
		if err != nil && len(ps) > 0 && !errors.As(err, &le) {
			t.Errorf("policies returned with a fatal error %v", err)
		}
		if le != nil && len(le.Errs) == 0 {
			t.Errorf("empty LoadError")
		}
		for _, p := range ps {
			switch p.Kind {
			case KindCNP, KindCCNP:
				if len(p.Rules) == 0 {
					t.Errorf("%s %s without rules", p.Kind, p.Name)
				}
			case KindNetworkPolicy:
				if p.NetworkPolicy == nil {
					t.Errorf("NetworkPolicy %s without its object", p.Name)
				}
			default:
				t.Errorf("policy of kind %q", p.Kind)
			}
			if !strings.HasPrefix(p.Source, "fuzz.yaml:") {
				t.Errorf("source %q", p.Source)
			}
			_ = p.Ref()
		}
		again, err2 := Load("fuzz.yaml", data)
		if fmt.Sprint(err) != fmt.Sprint(err2) || len(again) != len(ps) {
			t.Fatalf("Load is not deterministic: %d policies, %v; then %d, %v", len(ps), err, len(again), err2)
		}
		for i := range ps {
			if ps[i].Source != again[i].Source || ps[i].Ref() != again[i].Ref() {
				t.Errorf("policy %d: %s %s, then %s %s", i, ps[i].Source, ps[i].Ref(), again[i].Source, again[i].Ref())
			}
		}
		// Whatever loads compiles or is rejected with an error.
		_, _ = NewEvaluator(ps, Options{ClusterName: "default"})
	})
}

// TestLoadNestedLists: Kubernetes Lists do not nest; Load rejects a List
// in a List rather than re-parse items at every level (time quadratic in
// depth: 3000 levels, 69 KB, once took a minute).
func TestLoadNestedLists(t *testing.T) {
	_, err := Load("nested.yaml", []byte(nestedLists(1000)))
	if err == nil || !strings.Contains(err.Error(), "nested.yaml:1: items[0]: a List inside a List") {
		t.Errorf("error %v, want a List inside a List", err)
	}
}

// fuzzCluster gives toServices and named ports something to resolve.
var fuzzCluster = &Cluster{
	Services: []Service{
		{Namespace: "shop", Name: "api", Labels: map[string]string{"tier": "api"}, Selector: map[string]string{"app": "api"}},
		{Namespace: "shop", Name: "legacy"},
	},
	Pods: []Pod{
		{Namespace: "shop", Name: "web-0", Labels: map[string]string{"app": "web"}, Ports: []NamedPort{{Name: "http", Port: 8080}, {Name: "dns", Port: 53, Protocol: "UDP"}}},
		{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}, Ports: []NamedPort{{Name: "http", Port: 8081}}},
	},
}

// fuzzBases are realistic identities the fuzzer picks for each end
// (shape's low nibble for the source, high nibble for the destination)
// and adds its labels to: mutating bytes alone seldom spells them.
var fuzzBases = [16][]string{
	nil,
	podLabels("shop", "app=web", "io.cilium.k8s.policy.serviceaccount=web"),
	podLabels("shop", "app=client"),
	podLabels("other", "app=client", "io.cilium.k8s.namespace.labels.team=payments"),
	podLabels("kube-system", "k8s-app=kube-dns"),
	{"reserved:host"},
	{"reserved:remote-node"},
	{"cidr:10.1.2.3/32", "reserved:world"},
	{"fqdn:*.example.com", "reserved:world"},
	{"reserved:health"},
	{"reserved:kube-apiserver", "reserved:remote-node"},
	{"reserved:ingress"},
	{"reserved:unmanaged"},
	{"reserved:world"},
	{"reserved:host", "reserved:kube-apiserver"},
	{"reserved:init"},
}

// fuzzIdentity builds an identity from a base and newline-separated labels.
func fuzzIdentity(base []string, lbls, ip string, names []string, pod string) *Identity {
	ls := append([]string(nil), base...)
	for l := range strings.SplitSeq(lbls, "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	addr, _ := netip.ParseAddr(ip)
	id := NewIdentity(ls, addr, names)
	if id.Namespace != "" {
		id.Pod = pod
	}
	return id
}

// fuzzRequest builds a request: l7 is an HTTP path if it starts with "/",
// otherwise a DNS query and the destination's name.
func fuzzRequest(shape uint8, src, dst, srcIP, dstIP string, proto uint8, port uint16, l7 string) *Request {
	var names []string
	if l7 != "" && !strings.HasPrefix(l7, "/") {
		names = []string{l7}
	}
	req := &Request{
		Src:   fuzzIdentity(fuzzBases[shape&15], src, srcIP, nil, ""),
		Dst:   fuzzIdentity(fuzzBases[shape>>4], dst, dstIP, names, fmt.Sprintf("web-%d", port%2)),
		Proto: learn.Protocol(proto % 8),
		Port:  port,
	}
	switch {
	case strings.HasPrefix(l7, "/"):
		host, path, _ := strings.Cut(l7[1:], "/")
		req.HTTP = &HTTPRequest{Method: []string{"GET", "POST", "DELETE"}[port%3], Host: host, Path: "/" + path}
	case l7 != "":
		req.DNSQuery = l7
	}
	return req
}

// verdictView is the exported part of a Verdict.
type verdictView struct {
	Allowed         bool
	Egress, Ingress resultView
}

type resultView struct {
	Decision   Decision
	Policy     *Policy
	Rule       string
	L7         bool
	Unresolved []string
}

func viewOf(v Verdict) verdictView {
	r := func(r Result) resultView { return resultView{r.Decision, r.Policy, r.Rule, r.L7, r.Unresolved} }
	return verdictView{v.Allowed, r(v.Egress), r(v.Ingress)}
}

var verdictCmp = []cmp.Option{
	cmp.Comparer(func(a, b *Policy) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func checkVerdict(t *testing.T, what string, v Verdict) {
	t.Helper()
	for _, r := range []Result{v.Egress, v.Ingress} {
		switch r.Decision {
		case Allowed, Denied:
		case None:
			if r.Rule != "not-an-endpoint" && r.Rule != "not-enforced" {
				t.Errorf("%s: decision none with rule %q", what, r.Rule)
			}
		default:
			t.Errorf("%s: decision %q", what, r.Decision)
		}
		if r.L7 && r.Decision != Denied {
			t.Errorf("%s: L7 set on a %s result", what, r.Decision)
		}
		if r.Rule == "" {
			t.Errorf("%s: no rule", what)
		}
	}
	if v.Allowed != (v.Egress.Decision != Denied && v.Ingress.Decision != Denied) {
		t.Errorf("%s: allowed %v with egress %s, ingress %s", what, v.Allowed, v.Egress.Decision, v.Ingress.Decision)
	}
}

// fuzzSeedFlows returns up to n flows of a conformance case.
func fuzzSeedFlows(f *testing.F, path string, n int) []*learn.Flow {
	f.Helper()
	src, err := learn.OpenFile(path, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer src.Close()
	var out []*learn.Flow
	for len(out) < n {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Fatal(err)
		}
		if ev.Kind == learn.EventFlow {
			out = append(out, ev.Flow)
		}
	}
	return out
}

// FuzzEvaluate evaluates fuzzed connections against whatever policies
// load: Evaluate must not panic, and must give the same verdict whether
// the evaluator is fresh or has already seen other identities, and when
// asked twice.
func FuzzEvaluate(f *testing.F) {
	seeds := fuzzSeedPolicies(f)
	for path, data := range seeds {
		for i, fl := range fuzzSeedFlows(f, filepath.Join(filepath.Dir(path), "flows.jsonl"), 6) {
			proto := uint8(fl.Proto)
			if i%2 == 1 {
				proto |= 0x80 // with the cluster
			}
			port := fl.DstPort
			if fl.Proto.IsICMP() {
				port = uint16(fl.ICMPType)
			}
			f.Add(data, uint8(0), strings.Join(fl.Source.Labels, "\n"), strings.Join(fl.Destination.Labels, "\n"),
				fl.SrcIP.String(), fl.DstIP.String(), proto, port, "")
		}
	}
	const l7 = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: http, protocol: TCP}]
      rules: {http: [{method: GET, path: /api/.*, host: 'a\.example\.com'}]}
  egress:
  - toServices: [{k8sService: {serviceName: api, namespace: shop}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  - toEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
    toPorts:
    - ports: [{port: "53", protocol: ANY}]
      rules: {dns: [{matchPattern: "**.example.com"}]}
  - toFQDNs: [{matchPattern: "*.example.com"}]
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]
    icmps: [{fields: [{type: EchoRequest, family: IPv6}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: shop}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}, {ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]
    ports: [{port: 8000, endPort: 8100}, {port: http}]
`
	client := strings.Join(podLabels("shop", "app=client"), "\n")
	web := strings.Join(podLabels("shop", "app=web"), "\n")
	dns := strings.Join(podLabels("kube-system", "k8s-app=kube-dns"), "\n")
	f.Add([]byte(l7), uint8(0), client, web, "10.0.0.1", "10.0.0.2", uint8(learn.ProtoTCP)|0x80, uint16(8080), "/a.example.com/api/v1")
	f.Add([]byte(l7), uint8(0), web, dns, "10.0.0.2", "10.0.0.3", uint8(learn.ProtoUDP), uint16(53), "x.y.example.com")
	f.Add([]byte(l7), uint8(0), web, "reserved:world", "10.0.0.2", "93.184.216.34", uint8(learn.ProtoTCP), uint16(443), "www.example.com")
	f.Add([]byte(l7), uint8(0), web, "cidr:10.1.2.3/32\nreserved:world", "10.0.0.2", "10.1.2.3", uint8(learn.ProtoICMPv6), uint16(128), "")
	f.Add([]byte(l7), uint8(0), "reserved:host", web, "10.0.0.254", "10.0.0.2", uint8(learn.ProtoTCP), uint16(9), "")
	f.Add([]byte(l7), uint8(0x69), "", "", "", "", uint8(learn.ProtoSCTP), uint16(0), "")
	f.Add([]byte(l7), uint8(0x81), "k8s:app=web\nk8s:io.kubernetes.pod.namespace=shop", "fqdn:*.example.com\nreserved:world", "", "1.1.1.1", uint8(7), uint16(65535), "")

	f.Add([]byte(l7), uint8(0x12), "", "", "", "", uint8(learn.ProtoTCP)|0x80, uint16(8080), "/a.example.com/api/x")
	f.Add([]byte(l7), uint8(0x41), "", "", "", "", uint8(learn.ProtoUDP), uint16(53), "a.b.example.com")
	f.Add([]byte(l7), uint8(0x71), "", "", "", "10.96.0.1", uint8(learn.ProtoICMPv6), uint16(128), "")
	f.Add([]byte(l7), uint8(0x15), "", "", "", "", uint8(learn.ProtoTCP), uint16(8050), "")
	f.Add([]byte(l7), uint8(0x3e), "", "", "", "", uint8(learn.ProtoSCTP), uint16(8050), "")
	f.Add([]byte(l7), uint8(0x5f), "", "", "", "", uint8(learn.ProtoTCP), uint16(80), "")
	f.Add([]byte(l7), uint8(0xf2), "", "", "", "", uint8(learn.ProtoUDP), uint16(53), "example.com")

	f.Fuzz(func(t *testing.T, policies []byte, shape uint8, src, dst, srcIP, dstIP string, proto uint8, port uint16, l7 string) {
		ps, _ := Load("fuzz.yaml", policies)
		var cluster *Cluster
		if proto&0x80 != 0 {
			cluster = fuzzCluster
		}
		opts := Options{ClusterName: "default", Cluster: cluster}
		ev1, err := NewEvaluator(ps, opts)
		if err != nil {
			return
		}
		ev2, err := NewEvaluator(ps, opts)
		if err != nil {
			t.Fatalf("NewEvaluator succeeded once, then failed: %v", err)
		}
		a := fuzzRequest(shape, src, dst, srcIP, dstIP, proto, port, l7)
		b := &Request{Src: a.Dst, Dst: a.Src, Proto: a.Proto, Port: port ^ 1, HTTP: a.HTTP, DNSQuery: a.DNSQuery}

		// ev1 sees a then b, ev2 b then a: the subject cache must not
		// make the order matter.
		a1, b1, a1again := ev1.Evaluate(a), ev1.Evaluate(b), ev1.Evaluate(a)
		b2, a2 := ev2.Evaluate(b), ev2.Evaluate(a)
		checkVerdict(t, "a", a1)
		checkVerdict(t, "b", b1)
		for _, c := range []struct {
			what string
			x, y Verdict
		}{{"a twice", a1, a1again}, {"a, fresh evaluator", a1, a2}, {"b, fresh evaluator", b1, b2}} {
			if d := cmp.Diff(viewOf(c.x), viewOf(c.y), verdictCmp...); d != "" {
				t.Errorf("%s: verdicts differ (-first +second):\n%s", c.what, d)
			}
		}
	})
}
