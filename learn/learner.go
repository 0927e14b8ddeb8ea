package learn

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"net/url"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// SkipReason says why a record did not add to the graph.
type SkipReason string

const (
	SkipReply            SkipReason = "reply"                  // a reply packet of a connection already seen
	SkipDuplicate        SkipReason = "duplicate"              // another event of a connection already counted
	SkipFiltered         SkipReason = "filtered"               // excluded by --namespace, --pod, … filters
	SkipMalformed        SkipReason = "malformed"              // could not be decoded
	SkipNonFlow          SkipReason = "non-flow event"         // node status, agent or debug event, lost-events notice
	SkipUnknownDirection SkipReason = "unknown direction"      // neither Hubble nor the packet says which side initiated
	SkipUnknownPeer      SkipReason = "unknown identity"       // an end without identity, labels or namespace
	SkipNonPolicyDrop    SkipReason = "drop not by policy"     // a datapath drop for another reason than policy
	SkipSocketTrace      SkipReason = "socket trace"           // socket-LB translation events (Type SOCK)
	SkipProtocol         SkipReason = "no policy protocol"     // no L4, or an L4 policy cannot select (VRRP, IGMP)
	SkipICMPError        SkipReason = "icmp error"             // ICMP errors belong to another connection
	SkipNoPort           SkipReason = "no port"                // TCP/UDP/SCTP without a destination port
	SkipOtherEvent       SkipReason = "not a connection event" // capture, debug or unknown event types
)

// Summary counts what a learner did with its input.
type Summary struct {
	// Records is every record read; Flows those that held a flow.
	Records, Flows uint64
	// Used is the number of flows that added to the graph.
	Used uint64
	// Reversed counts replies turned back into the request direction
	// that added to the graph (the request side was not seen).
	Reversed uint64
	// Skipped counts records that did not add to the graph, by reason.
	Skipped map[SkipReason]uint64
	// Lost is the number of events Hubble reported lost.
	Lost uint64
	// NodeErrors counts reports of Hubble nodes erroring or unavailable.
	NodeErrors uint64
	// First and Last bound the times of the flows used.
	First, Last time.Time
}

// Learner adds flows to a graph.
type Learner struct {
	g       *Graph
	filter  *Filter
	window  time.Duration
	conns   map[connKey]*connState
	maxTime time.Time
	sum     Summary
	ticks   []tick
	// identity remembers identityLabel's answers: a cluster has few
	// distinct label keys, and the filter is a list of regexps.
	identity map[string]bool
}

func (l *Learner) keepLabel(source, key string) bool {
	k := source + ":" + key
	keep, ok := l.identity[k]
	if !ok {
		keep = identityLabel(source, key)
		if len(l.identity) < 1<<16 {
			l.identity[k] = keep
		}
	}
	return keep
}

// connKey identifies one connection of an edge.
type connKey struct {
	edge       *Edge
	clientIP   netip.Addr
	clientPort uint16
	serverIP   netip.Addr
}

type connState struct {
	last     time.Time
	verdicts []string
}

// connWindow is how long a connection is remembered after its last event:
// events of the same 5-tuple within it belong to the same connection.
// It covers SYN retransmits (about a minute) and Hubble's periodic trace
// reports on long connections.
const connWindow = 2 * time.Minute

// NewLearner returns a learner that adds to g the flows that pass filter
// (nil passes all).
func NewLearner(g *Graph, filter *Filter) *Learner {
	return &Learner{g: g, filter: filter, window: connWindow, conns: map[connKey]*connState{}, identity: map[string]bool{}, sum: Summary{Skipped: map[SkipReason]uint64{}}}
}

type tick struct {
	every time.Duration
	next  time.Time
	fn    func() error
}

// Every makes Learn call fn between events, at most once per interval:
// for checkpoints and progress lines. An error from fn ends Learn.
func (l *Learner) Every(interval time.Duration, fn func() error) {
	l.ticks = append(l.ticks, tick{every: interval, next: time.Now().Add(interval), fn: fn})
}

func (l *Learner) runTicks() error {
	if len(l.ticks) == 0 {
		return nil
	}
	now := time.Now()
	for i := range l.ticks {
		t := &l.ticks[i]
		if now.Before(t.next) {
			continue
		}
		t.next = now.Add(t.every)
		l.g.normalize()
		if err := t.fn(); err != nil {
			return err
		}
	}
	return nil
}

// Summary returns the counts so far.
func (l *Learner) Summary() Summary { return l.sum }

// MalformedFunc is called for each malformed record. Returning an error
// stops learning with that error.
type MalformedFunc func(Event) error

// Learn reads src to the end, adding its flows to the graph. Connection
// tracking starts afresh for each source, so the graph learned from
// several sources does not depend on their order. When ctx is done it
// learns what the source has already read and returns the context's
// error; that is all in the graph.
func (l *Learner) Learn(ctx context.Context, src Source, onMalformed MalformedFunc) error {
	clear(l.conns)
	l.maxTime = time.Time{}
	defer l.g.normalize()
	for {
		ev, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if ev.Kind == EventIdle {
			if err := l.runTicks(); err != nil {
				return err
			}
			continue
		}
		l.sum.Records++
		if ev.Kind == EventMalformed && onMalformed != nil {
			if err := onMalformed(ev); err != nil {
				l.sum.Skipped[SkipMalformed]++
				return err
			}
		}
		l.Add(ev)
		if err := l.runTicks(); err != nil {
			return err
		}
	}
}

// Add adds one event and returns why it was skipped ("" if it was used).
func (l *Learner) Add(ev Event) SkipReason {
	var r SkipReason
	switch ev.Kind {
	case EventFlow:
		l.sum.Flows++
		r = l.addFlow(ev.Flow)
	case EventLost:
		l.sum.Lost += ev.Lost
		r = SkipNonFlow
	case EventOther:
		if ev.Other == OtherNodeError {
			l.sum.NodeErrors++
		}
		r = SkipNonFlow
	default:
		r = SkipMalformed
	}
	if r != "" {
		l.sum.Skipped[r]++
	}
	return r
}

// direction decides whether a flow is a request (false) or a reply
// (true) of its connection, or that nobody can tell.
// Direction says whether a flow is a reply (its source is the server of
// the connection), from is_reply, the L7 record type, TCP flags or the
// ICMP type; r is SkipUnknownDirection when nothing tells.
func Direction(f *Flow) (reply bool, r SkipReason) { return direction(f) }

// IsICMPError reports whether an ICMP type is an error message, which
// belongs to some other connection.
func IsICMPError(p Protocol, t uint8) bool { return isICMPError(p, t) }

func direction(f *Flow) (reply bool, r SkipReason) {
	switch {
	case f.Type == flowpb.FlowType_L7 || f.EventType == 129:
		switch {
		case f.L7 == nil:
			return false, SkipUnknownDirection
		case f.L7.Type == flowpb.L7FlowType_REQUEST:
			return false, ""
		case f.L7.Type == flowpb.L7FlowType_RESPONSE:
			return true, ""
		}
		return false, SkipUnknownDirection
	case f.Reply == ReplyYes:
		return true, ""
	case f.Reply == ReplyNo:
		return false, ""
	case f.EventType == 5 || f.Verdict == flowpb.Verdict_DROPPED:
		// Policy is decided, and packets dropped, on the first packet
		// of a connection in its direction.
		return false, ""
	}
	switch f.Proto {
	case ProtoTCP:
		if f.TCPFlags&TCPSyn != 0 {
			return f.TCPFlags&TCPAck != 0, ""
		}
	case ProtoICMPv4, ProtoICMPv6:
		if _, ok := icmpRequest(f.Proto, f.ICMPType, false); ok {
			return false, ""
		}
		if _, ok := icmpRequest(f.Proto, f.ICMPType, true); ok {
			return true, ""
		}
	}
	return false, SkipUnknownDirection
}

// icmpRequest maps an ICMP query type to the request type of its exchange.
// With reply set, t must be a reply type (echo reply → echo request);
// otherwise a request type. ok is false for error messages and types
// that are not part of a query exchange.
func icmpRequest(p Protocol, t uint8, reply bool) (req uint8, ok bool) {
	var pairs [][2]uint8 // request, reply
	if p == ProtoICMPv4 {
		pairs = [][2]uint8{{8, 0}, {13, 14}, {15, 16}, {17, 18}}
	} else {
		pairs = [][2]uint8{{128, 129}}
	}
	for _, pr := range pairs {
		if !reply && t == pr[0] || reply && t == pr[1] {
			return pr[0], true
		}
	}
	return 0, false
}

func isICMPError(p Protocol, t uint8) bool {
	if p == ProtoICMPv4 {
		switch t {
		case 3, 4, 5, 11, 12:
			return true
		}
		return false
	}
	return t < 128
}

func verdictKey(f *Flow) (string, SkipReason) {
	switch f.Verdict {
	case flowpb.Verdict_DROPPED:
		switch f.DropReason {
		case flowpb.DropReason_POLICY_DENIED, flowpb.DropReason_POLICY_DENY, flowpb.DropReason_AUTH_REQUIRED:
			return "DROPPED:" + f.DropReason.String(), ""
		}
		return "", SkipNonPolicyDrop
	case flowpb.Verdict_FORWARDED, flowpb.Verdict_REDIRECTED, flowpb.Verdict_AUDIT, flowpb.Verdict_ERROR:
		return f.Verdict.String(), ""
	case flowpb.Verdict_VERDICT_UNKNOWN:
		// Field-masked exports may leave the verdict out of a trace.
		return flowpb.Verdict_FORWARDED.String(), ""
	}
	return "", SkipSocketTrace // TRACED and TRANSLATED are socket-LB events
}

func (l *Learner) addFlow(f *Flow) SkipReason {
	if f.Type == flowpb.FlowType_SOCK || f.EventType == 7 {
		return SkipSocketTrace
	}
	switch f.EventType {
	case 0, 1, 4, 5, 129:
	default:
		return SkipOtherEvent
	}
	if !l.filter.Match(f) {
		return SkipFiltered
	}
	verdict, r := verdictKey(f)
	if r != "" {
		return r
	}
	reply, r := direction(f)
	if r != "" {
		return r
	}
	if f.L7 != nil && f.L7.Type == flowpb.L7FlowType_RESPONSE {
		// The request record already made the edge; a response only
		// tells which addresses a DNS name resolved to.
		l.addDNSAnswer(f)
		return SkipReply
	}
	client, server := &f.Source, &f.Destination
	clientIP, serverIP := f.SrcIP, f.DstIP
	clientPort, serverPort := f.SrcPort, f.DstPort
	serverNames := f.DestinationNames
	if reply {
		client, server = server, client
		clientIP, serverIP = serverIP, clientIP
		clientPort, serverPort = serverPort, clientPort
		serverNames = f.SourceNames
	}
	switch f.Proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
		if serverPort == 0 {
			return SkipNoPort
		}
	case ProtoICMPv4, ProtoICMPv6:
		if isICMPError(f.Proto, f.ICMPType) {
			return SkipICMPError
		}
		if t, ok := icmpRequest(f.Proto, f.ICMPType, reply); ok {
			serverPort = uint16(t)
		} else {
			serverPort = uint16(f.ICMPType)
		}
		clientPort = 0
	default:
		return SkipProtocol
	}
	cp, cns := peerFromEndpoint(client, clientIP, l.keepLabel)
	sp, sns := peerFromEndpoint(server, serverIP, l.keepLabel)
	if cp == nil || sp == nil {
		return SkipUnknownPeer
	}
	if sp.Kind == PeerExternal {
		sp.Names = serverNames
	}
	cp = l.g.addPeer(cp)
	sp = l.g.addPeer(sp)
	if cns != nil {
		l.g.addNamespaceLabels(NamespaceKey{cp.Cluster, cp.Namespace}, cns)
	}
	if sns != nil {
		l.g.addNamespaceLabels(NamespaceKey{sp.Cluster, sp.Namespace}, sns)
	}
	e := l.g.edge(EdgeKey{From: cp.key, To: sp.key, Proto: f.Proto, Port: serverPort})
	e.seen(f.Time)
	l.addL7(e, f, reply)
	if !reply {
		addRefs(&e.EgressAllowedBy, f.EgressAllowedBy)
		addRefs(&e.IngressAllowedBy, f.IngressAllowedBy)
		addRefs(&e.EgressDeniedBy, f.EgressDeniedBy)
		addRefs(&e.IngressDeniedBy, f.IngressDeniedBy)
	}

	newConn, newVerdict := l.track(connKey{e, clientIP, clientPort, serverIP}, f.Time, verdict)
	if newConn {
		e.Flows++
	}
	if newVerdict {
		e.addVerdict(verdict, 1)
	}
	switch {
	case newConn || newVerdict:
		l.used(f.Time)
		if reply {
			l.sum.Reversed++
		}
		return ""
	case reply:
		return SkipReply
	default:
		return SkipDuplicate
	}
}

func (l *Learner) used(t time.Time) {
	l.sum.Used++
	if t.IsZero() {
		return
	}
	if l.sum.First.IsZero() || t.Before(l.sum.First) {
		l.sum.First = t
	}
	if t.After(l.sum.Last) {
		l.sum.Last = t
	}
}

// track records an event of a connection. It reports whether the event
// starts a connection not seen within the window, and whether its verdict
// is new for the connection.
func (l *Learner) track(k connKey, t time.Time, verdict string) (newConn, newVerdict bool) {
	if t.After(l.maxTime) {
		l.maxTime = t
	}
	st := l.conns[k]
	if st != nil && !t.IsZero() && !st.last.IsZero() && absDuration(t.Sub(st.last)) > l.window {
		st = nil // the 5-tuple was reused by a new connection
	}
	if st == nil {
		if len(l.conns) >= 1<<16 && len(l.conns)&(len(l.conns)-1) == 0 {
			l.expire()
		}
		l.conns[k] = &connState{last: t, verdicts: []string{verdict}}
		return true, true
	}
	if t.After(st.last) {
		st.last = t
	}
	for _, v := range st.verdicts {
		if v == verdict {
			return false, false
		}
	}
	st.verdicts = append(st.verdicts, verdict)
	return false, true
}

// expire forgets connections idle for longer than the window before the
// newest event seen.
func (l *Learner) expire() {
	cutoff := l.maxTime.Add(-2 * l.window)
	for k, st := range l.conns {
		if st.last.Before(cutoff) {
			delete(l.conns, k)
		}
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// addL7 records the HTTP requests and DNS queries of a request record.
func (l *Learner) addL7(e *Edge, f *Flow, reply bool) {
	if f.L7 == nil {
		return
	}
	if h := f.L7.HTTP; h != nil && !reply {
		e.HTTPTotal++
		e.addHTTP(httpRequest(h), 1)
	}
	if d := f.L7.DNS; d != nil && d.Query != "" && !reply {
		e.DNSTotal++
		e.addDNS(normalizeDNSName(d.Query), 1)
	}
}

// addDNSAnswer records the addresses a successful DNS response gave its
// client. The DNS proxy reports responses from server to client; the side
// on port 53 is the server whatever the record says.
func (l *Learner) addDNSAnswer(f *Flow) {
	d := f.L7.DNS
	if d == nil || d.Query == "" || d.RCode != 0 || len(d.IPs) == 0 {
		return
	}
	client, ip := &f.Destination, f.DstIP
	if f.DstPort == 53 && f.SrcPort != 53 {
		client, ip = &f.Source, f.SrcIP
	}
	cp, nsLabels := peerFromEndpoint(client, ip, l.keepLabel)
	if cp == nil || cp.Kind != PeerWorkload {
		return
	}
	cp = l.g.addPeer(cp)
	if nsLabels != nil {
		l.g.addNamespaceLabels(NamespaceKey{cp.Cluster, cp.Namespace}, nsLabels)
	}
	name := normalizeDNSName(d.Query)
	for _, a := range d.IPs {
		l.g.addResolution(cp.key, a, name)
	}
}

func httpRequest(h *HTTP) HTTPRequest {
	r := HTTPRequest{Method: h.Method}
	u, err := url.Parse(h.URL)
	if err != nil {
		r.Path = h.URL
		return r
	}
	r.Host = u.Host
	r.Path = u.EscapedPath()
	if r.Path == "" {
		r.Path = "/"
	}
	return r
}
