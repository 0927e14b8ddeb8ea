package learn

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"google.golang.org/protobuf/reflect/protoreflect"
	k8slabels "k8s.io/apimachinery/pkg/labels"
)

// Filter selects flows the way Hubble's server-side filters do
// (pkg/hubble/filters in cilium v1.20.2): a flow passes if it matches one of
// the whitelist filters (or there are none), matches no blacklist filter,
// and lies in [since, until]. Within one FlowFilter every set field must
// match; within a field any value may.
//
// It is built from the same flowpb.FlowFilter messages that `hubble
// observe` sends to Hubble Relay, so a live source can send them to the
// server and a file source applies them here, with one meaning.
type Filter struct {
	whitelist, blacklist []*flowpb.FlowFilter
	white, black         []compiledFilter
	since, until         time.Time
}

// supportedFields are the FlowFilter fields Filter evaluates.
var supportedFields = map[protoreflect.Name]bool{
	"source_pod": true, "destination_pod": true,
	"source_label": true, "destination_label": true,
	"source_ip": true, "destination_ip": true,
	"verdict": true,
}

// CompileFilter builds a Filter. Zero times leave the window open.
func CompileFilter(whitelist, blacklist []*flowpb.FlowFilter, since, until time.Time) (*Filter, error) {
	f := &Filter{whitelist: whitelist, blacklist: blacklist, since: since, until: until}
	for _, l := range []struct {
		in  []*flowpb.FlowFilter
		out *[]compiledFilter
	}{{whitelist, &f.white}, {blacklist, &f.black}} {
		for _, ff := range l.in {
			c, err := compileFlowFilter(ff)
			if err != nil {
				return nil, err
			}
			*l.out = append(*l.out, c)
		}
	}
	return f, nil
}

// Whitelist returns the filters a flow must match one of.
func (f *Filter) Whitelist() []*flowpb.FlowFilter { return f.whitelist }

// Blacklist returns the filters that exclude a flow.
func (f *Filter) Blacklist() []*flowpb.FlowFilter { return f.blacklist }

// Since returns the start of the time window (zero if open).
func (f *Filter) Since() time.Time { return f.since }

// Until returns the end of the time window (zero if open).
func (f *Filter) Until() time.Time { return f.until }

// Match reports whether fl passes the filter. A nil filter passes all.
func (f *Filter) Match(fl *Flow) bool {
	if f == nil {
		return true
	}
	if !f.since.IsZero() && fl.Time.Before(f.since) || !f.until.IsZero() && fl.Time.After(f.until) {
		return false
	}
	if len(f.white) > 0 && !slices.ContainsFunc(f.white, func(c compiledFilter) bool { return c.match(fl) }) {
		return false
	}
	return !slices.ContainsFunc(f.black, func(c compiledFilter) bool { return c.match(fl) })
}

type compiledFilter []func(*Flow) bool

func (c compiledFilter) match(fl *Flow) bool {
	for _, m := range c {
		if !m(fl) {
			return false
		}
	}
	return true
}

func compileFlowFilter(ff *flowpb.FlowFilter) (compiledFilter, error) {
	var err error
	ff.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !supportedFields[fd.Name()] {
			err = fmt.Errorf("unsupported flow filter field %q", fd.Name())
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	var c compiledFilter
	add := func(m func(*Flow) bool, err error) error {
		if err != nil {
			return err
		}
		if m != nil {
			c = append(c, m)
		}
		return nil
	}
	src := func(f *Flow) *Endpoint { return &f.Source }
	dst := func(f *Flow) *Endpoint { return &f.Destination }
	srcIP := func(f *Flow) netip.Addr { return f.SrcIP }
	dstIP := func(f *Flow) netip.Addr { return f.DstIP }
	err = errors.Join(
		add(podMatcher(ff.GetSourcePod(), src)),
		add(podMatcher(ff.GetDestinationPod(), dst)),
		add(labelMatcher(ff.GetSourceLabel(), src)),
		add(labelMatcher(ff.GetDestinationLabel(), dst)),
		add(ipMatcher(ff.GetSourceIp(), srcIP)),
		add(ipMatcher(ff.GetDestinationIp(), dstIP)),
		add(verdictMatcher(ff.GetVerdict())),
	)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// podMatcher mirrors filters.filterByNamespacedName: "ns/prefix", "ns/"
// (any pod in ns), "/prefix" (any namespace) and a bare "prefix" (in the
// default namespace). Endpoints without namespace and pod never match.
func podMatcher(names []string, ep func(*Flow) *Endpoint) (func(*Flow) bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	type nameFilter struct{ ns, prefix string }
	var nfs []nameFilter
	for _, name := range names {
		if name == "" {
			return nil, errors.New("invalid pod filter: name must not be empty")
		}
		ns, prefix := parseNamespaceName(name)
		nfs = append(nfs, nameFilter{ns, prefix})
	}
	return func(f *Flow) bool {
		e := ep(f)
		if e.Namespace == "" && e.PodName == "" {
			return false
		}
		for _, nf := range nfs {
			if (nf.prefix == "" || strings.HasPrefix(e.PodName, nf.prefix)) && (nf.ns == "" || nf.ns == e.Namespace) {
				return true
			}
		}
		return false
	}, nil
}

// parseNamespaceName is pkg/hubble/k8s.ParseNamespaceName.
func parseNamespaceName(s string) (ns, name string) {
	parts := strings.Split(s, "/")
	switch {
	case len(parts) > 1:
		return parts[0], parts[1]
	case parts[0] == "":
		return "", ""
	default:
		return "default", parts[0]
	}
}

func ipMatcher(ips []string, ip func(*Flow) netip.Addr) (func(*Flow) bool, error) {
	if len(ips) == 0 {
		return nil, nil
	}
	var addrs []netip.Addr
	var prefixes []netip.Prefix
	for _, s := range ips {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("invalid IP prefix %q in filter: %w", s, err)
			}
			prefixes = append(prefixes, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("invalid IP address %q in filter: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	return func(f *Flow) bool {
		a := ip(f)
		if !a.IsValid() {
			return false
		}
		return slices.Contains(addrs, a) || slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
	}, nil
}

func verdictMatcher(vs []flowpb.Verdict) (func(*Flow) bool, error) {
	if len(vs) == 0 {
		return nil, nil
	}
	return func(f *Flow) bool { return slices.Contains(vs, f.Verdict) }, nil
}

// labelMatcher mirrors filters.FilterByLabelSelectors: any selector may
// match. Selectors use Kubernetes syntax with Cilium source prefixes
// ("k8s:app=x"); a key without a source means "any".
func labelMatcher(selectors []string, ep func(*Flow) *Endpoint) (func(*Flow) bool, error) {
	if len(selectors) == 0 {
		return nil, nil
	}
	var sels []k8slabels.Selector
	for _, s := range selectors {
		t, err := translateSelector(s)
		if err != nil {
			return nil, fmt.Errorf("invalid label filter %q: %w", s, err)
		}
		sel, err := k8slabels.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("invalid label filter %q: %w", s, err)
		}
		sels = append(sels, sel)
	}
	return func(f *Flow) bool {
		ls := labelSet(ep(f).Labels)
		for _, s := range sels {
			if s.Matches(ls) {
				return true
			}
		}
		return false
	}, nil
}

// translateSelector rewrites "k8s:foo in (a,b)" as "k8s.foo in (a,b)" and a
// bare key "foo" as "any.foo", as Hubble's labelparser.go does, because
// Kubernetes selectors do not allow a colon in keys.
func translateSelector(sel string) (string, error) {
	var out strings.Builder
	rs := []rune(sel)
	i := 0
	for i < len(rs) {
		// Up to the next key.
		for i < len(rs) && (unicode.IsSpace(rs[i]) || rs[i] == '!') {
			out.WriteRune(rs[i])
			i++
		}
		// The key.
		start := i
		for i < len(rs) && !unicode.IsSpace(rs[i]) && rs[i] != '=' && rs[i] != '!' && rs[i] != ',' {
			i++
		}
		key := string(rs[start:i])
		if key != "" {
			if !strings.Contains(key, ":") {
				key = "any:" + key
			}
			out.WriteString(strings.Replace(key, ":", ".", 1))
		}
		// Up to and including the comma that ends this requirement.
		nesting := 0
		for i < len(rs) {
			r := rs[i]
			i++
			switch r {
			case '(':
				nesting++
			case ')':
				nesting--
			}
			out.WriteRune(r)
			if r == ',' && nesting == 0 {
				break
			}
		}
	}
	return out.String(), nil
}

// labelSet lets a Kubernetes selector look up Cilium labels by
// "source.key", where source "any" matches a label of any source.
type labelSet []string

func (ls labelSet) Has(key string) bool { _, ok := ls.Lookup(key); return ok }
func (ls labelSet) Get(key string) string {
	v, _ := ls.Lookup(key)
	return v
}

func (ls labelSet) Lookup(key string) (string, bool) {
	src, k, ok := strings.Cut(key, ".")
	if !ok {
		src, k = "any", key
	}
	for _, l := range ls {
		lsrc, rest, _ := strings.Cut(l, ":")
		if src != "any" && lsrc != src {
			continue
		}
		lk, v, _ := strings.Cut(rest, "=")
		if lk == k {
			return v, true
		}
	}
	return "", false
}
