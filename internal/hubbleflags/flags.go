package hubbleflags

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"

	"github.com/cnpgen/cnpgen/learn"
)

// Flags holds the filter flags of one command.
type Flags struct {
	white, black *tracker
	blacklisting bool
	since, until string
}

// tracker is hubble's filterTracker: the filter is left OR right, so that
// either-side flags (--pod, --ip, --label, --namespace) match a flow on
// either end, while from-/to- flags apply to both halves.
type tracker struct {
	left, right      *flowpb.FlowFilter
	ns, srcNs, dstNs []string
	changed          []string
}

// filterValue is a pflag.Value that routes a flag into the whitelist or,
// after --not, the blacklist. Flags are applied in command-line order,
// which --not depends on.
type filterValue struct {
	name string
	f    *Flags
}

func (v *filterValue) String() string { return "" }
func (v *filterValue) Type() string   { return "filter" }
func (v *filterValue) Set(val string) error {
	return v.f.set(v.name, val)
}

// Register adds the filter flags to fs.
func Register(fs *pflag.FlagSet) *Flags {
	f := &Flags{}
	add := func(name, short, usage string) {
		fs.VarP(&filterValue{name, f}, name, short, usage)
	}
	add("not", "", "Reverses the next filter to be blacklist i.e. --not --from-ip 2.2.2.2")
	fs.Lookup("not").NoOptDefVal = "true"
	add("verdict", "", "Show only flows with this verdict [FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED]")
	add("from-ip", "", "Show all flows originating at the given IP address. Each of the source IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').")
	add("ip", "", "Show all flows originating or terminating at the given IP address. Each of the IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').")
	add("to-ip", "", "Show all flows terminating at the given IP address. Each of the destination IPs can be specified as an exact match (e.g. '1.1.1.1') or as a CIDR range (e.g.'1.1.1.0/24').")
	add("from-pod", "", "Show all flows originating in the given pod name prefix([namespace/]<pod-name>). If namespace is not provided, 'default' is used")
	add("pod", "", "Show all flows related to the given pod name prefix ([namespace/]<pod-name>). If namespace is not provided, 'default' is used.")
	add("to-pod", "", "Show all flows terminating in the given pod name prefix([namespace/]<pod-name>). If namespace is not provided, 'default' is used")
	add("from-namespace", "", "Show all flows originating in the given Kubernetes namespace.")
	add("namespace", "n", "Show all flows related to the given Kubernetes namespace.")
	add("to-namespace", "", "Show all flows terminating in the given Kubernetes namespace.")
	add("from-label", "", `Show only flows originating in an endpoint with the given labels (e.g. "key1=value1", "reserved:world")`)
	add("label", "l", `Show only flows related to an endpoint with the given labels (e.g. "key1=value1", "reserved:world")`)
	add("to-label", "", `Show only flows terminating in an endpoint with given labels (e.g. "key1=value1", "reserved:world")`)
	fs.StringVar(&f.since, "since", "", "Filter flows since a specific date. The format is relative (e.g. 3s, 4m, 1h43,, ...) or one of:\n  YearMonthDay, YearMonthDayHour, YearMonthDayHourMinute, RFC3339, RFC3339Milli, RFC3339Micro, RFC3339Nano, RFC1123Z")
	fs.StringVar(&f.until, "until", "", "Filter flows until a specific date. The format is relative (e.g. 3s, 4m, 1h43,, ...) or one of:\n  YearMonthDay, YearMonthDayHour, YearMonthDayHourMinute, RFC3339, RFC3339Milli, RFC3339Micro, RFC3339Nano, RFC1123Z")
	return f
}

// conflicts are the groups of flags hubble refuses to combine, for the
// flags we have.
var conflicts = [][]string{
	{"from-ip", "ip", "from-namespace", "namespace"},
	{"from-ip", "ip", "from-pod", "pod"},
	{"to-ip", "ip", "to-namespace", "namespace"},
	{"to-ip", "ip", "to-pod", "pod"},
	{"to-pod", "namespace"},
	{"from-pod", "namespace"},
	{"label", "from-label"},
	{"label", "to-label"},
	{"verdict"},
}

func (f *Flags) set(name, val string) error {
	if name == "not" {
		if f.blacklisting {
			return errors.New("consecutive --not statements")
		}
		f.blacklisting = true
		return nil
	}
	var t **tracker
	if f.blacklisting {
		f.blacklisting = false
		t = &f.black
	} else {
		t = &f.white
	}
	if *t == nil {
		*t = &tracker{}
	}
	return (*t).set(name, val)
}

func (t *tracker) set(name, val string) error {
	if !slices.Contains(t.changed, name) {
		t.changed = append(t.changed, name)
	}
	for _, group := range conflicts {
		for _, a := range group {
			for _, b := range group {
				if a != b && slices.Contains(t.changed, a) && slices.Contains(t.changed, b) {
					return fmt.Errorf("filters --%s and --%s cannot be combined", a, b)
				}
			}
		}
	}
	both := func(update func(*flowpb.FlowFilter)) { t.applyLeft(update); t.applyRight(update) }
	switch name {
	case "pod":
		t.applyLeft(func(ff *flowpb.FlowFilter) { ff.SourcePod = append(ff.SourcePod, val) })
		t.applyRight(func(ff *flowpb.FlowFilter) { ff.DestinationPod = append(ff.DestinationPod, val) })
	case "from-pod":
		both(func(ff *flowpb.FlowFilter) { ff.SourcePod = append(ff.SourcePod, val) })
	case "to-pod":
		both(func(ff *flowpb.FlowFilter) { ff.DestinationPod = append(ff.DestinationPod, val) })
	case "ip", "from-ip", "to-ip":
		if err := checkIP(val); err != nil {
			return fmt.Errorf("--%s %q: %w", name, val, err)
		}
		switch name {
		case "ip":
			t.applyLeft(func(ff *flowpb.FlowFilter) { ff.SourceIp = append(ff.SourceIp, val) })
			t.applyRight(func(ff *flowpb.FlowFilter) { ff.DestinationIp = append(ff.DestinationIp, val) })
		case "from-ip":
			both(func(ff *flowpb.FlowFilter) { ff.SourceIp = append(ff.SourceIp, val) })
		default:
			both(func(ff *flowpb.FlowFilter) { ff.DestinationIp = append(ff.DestinationIp, val) })
		}
	case "label":
		t.applyLeft(func(ff *flowpb.FlowFilter) { ff.SourceLabel = append(ff.SourceLabel, val) })
		t.applyRight(func(ff *flowpb.FlowFilter) { ff.DestinationLabel = append(ff.DestinationLabel, val) })
	case "from-label":
		both(func(ff *flowpb.FlowFilter) { ff.SourceLabel = append(ff.SourceLabel, val) })
	case "to-label":
		both(func(ff *flowpb.FlowFilter) { ff.DestinationLabel = append(ff.DestinationLabel, val) })
	case "namespace":
		t.ns = append(t.ns, val)
	case "from-namespace":
		t.srcNs = append(t.srcNs, val)
	case "to-namespace":
		t.dstNs = append(t.dstNs, val)
	case "verdict":
		v, ok := flowpb.Verdict_value[strings.ToUpper(val)]
		if !ok {
			return fmt.Errorf("invalid --verdict value: %v", val)
		}
		both(func(ff *flowpb.FlowFilter) { ff.Verdict = append(ff.Verdict, flowpb.Verdict(v)) })
	default:
		return fmt.Errorf("unknown filter --%s", name)
	}
	return nil
}

func checkIP(s string) error {
	// Validated by learn.CompileFilter too; checked here to name the flag.
	_, err := learn.CompileFilter([]*flowpb.FlowFilter{{SourceIp: []string{s}}}, nil, time.Time{}, time.Time{})
	if err != nil {
		return errors.New("invalid IP address or CIDR")
	}
	return nil
}

func (t *tracker) applyLeft(update func(*flowpb.FlowFilter)) {
	if t.left == nil {
		t.left = &flowpb.FlowFilter{}
	}
	update(t.left)
}

func (t *tracker) applyRight(update func(*flowpb.FlowFilter)) {
	if t.right == nil {
		t.right = &flowpb.FlowFilter{}
	}
	update(t.right)
}

// flowFilters materialises the tracker as hubble does: namespaces become
// "ns/" pod prefixes (or are prepended to bare pod names), and identical
// halves collapse into one filter.
func (t *tracker) flowFilters() ([]*flowpb.FlowFilter, error) {
	if t == nil || t.left == nil && t.right == nil && len(t.ns)+len(t.srcNs)+len(t.dstNs) == 0 {
		return nil, nil
	}
	if t.left == nil {
		t.left = &flowpb.FlowFilter{}
	}
	if t.right == nil {
		t.right = &flowpb.FlowFilter{}
	}
	for _, x := range []struct{ ns, pods []string }{
		{t.ns, t.left.SourcePod}, {t.ns, t.right.DestinationPod},
		{t.srcNs, t.left.SourcePod}, {t.srcNs, t.right.SourcePod},
		{t.dstNs, t.left.DestinationPod}, {t.dstNs, t.right.DestinationPod},
	} {
		for _, ns := range x.ns {
			for _, p := range x.pods {
				if i := strings.Index(p, "/"); i >= 0 && p[:i] != ns {
					return nil, fmt.Errorf("namespace conflict: %q does not contain %q", ns, p)
				}
			}
		}
	}
	applyNs := func(pods *[]string, ns []string) {
		if len(ns) == 0 {
			return
		}
		if len(*pods) == 0 {
			*pods = []string{""}
		}
		var res []string
		for _, p := range *pods {
			if strings.Contains(p, "/") {
				res = append(res, p)
				continue
			}
			for _, n := range ns {
				res = append(res, n+"/"+p)
			}
		}
		*pods = res
	}
	applyNs(&t.left.DestinationPod, t.dstNs)
	applyNs(&t.right.DestinationPod, t.dstNs)
	applyNs(&t.left.SourcePod, t.srcNs)
	applyNs(&t.right.SourcePod, t.srcNs)
	applyNs(&t.left.SourcePod, t.ns)
	applyNs(&t.right.DestinationPod, t.ns)
	if proto.Equal(t.left, t.right) {
		return []*flowpb.FlowFilter{t.left}, nil
	}
	return []*flowpb.FlowFilter{t.left, t.right}, nil
}

// Filter builds the filter the flags describe; now anchors relative
// --since and --until values. It returns nil when no flag was set.
func (f *Flags) Filter(now time.Time) (*learn.Filter, error) {
	if f.blacklisting {
		return nil, errors.New("--not must be followed by a filter flag")
	}
	white, err := f.white.flowFilters()
	if err != nil {
		return nil, err
	}
	black, err := f.black.flowFilters()
	if err != nil {
		return nil, err
	}
	since, err := parseTime("since", f.since, now)
	if err != nil {
		return nil, err
	}
	until, err := parseTime("until", f.until, now)
	if err != nil {
		return nil, err
	}
	if white == nil && black == nil && since.IsZero() && until.IsZero() {
		return nil, nil
	}
	return learn.CompileFilter(white, black, since, until)
}

// Time layouts hubble accepts (hubble/pkg/time).
var layouts = []string{
	"2006-01-02",
	"2006-01-02T15Z07:00",
	"2006-01-02T15:04Z07:00",
	time.RFC3339,
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999Z07:00",
	"2006-01-02T15:04:05.999999Z07:00",
	time.RFC1123Z,
}

func parseTime(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--%s %q: not a duration (5m) or a time (RFC3339, 2006-01-02, …)", flag, s)
}
