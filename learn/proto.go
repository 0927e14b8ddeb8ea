package learn

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// FieldError is a flow that decoded but carries an impossible value. Field
// is the path in Hubble's JSON ("source.labels[3]", "l4.TCP.destination_port").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FromProto converts a Hubble protobuf flow into a [Flow], validating what
// learning relies on: labels, IP addresses and port ranges.
func FromProto(f *flowpb.Flow) (*Flow, error) {
	out := &Flow{
		NodeName:     f.GetNodeName(),
		UUID:         f.GetUuid(),
		Verdict:      f.GetVerdict(),
		DropReason:   f.GetDropReasonDesc(),
		EventType:    f.GetEventType().GetType(),
		EventSubType: f.GetEventType().GetSubType(),
		Type:         f.GetType(),
		ObsPoint:     f.GetTraceObservationPoint(),
		Direction:    f.GetTrafficDirection(),
	}
	if ts := f.GetTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, &FieldError{"time", err.Error()}
		}
		out.Time = ts.AsTime()
	}
	//lint:ignore SA1019 old captures only have the numeric reason
	if out.DropReason == flowpb.DropReason_DROP_REASON_UNKNOWN && f.GetDropReason() != 0 {
		//lint:ignore SA1019 deprecated field still emitted by Hubble
		out.DropReason = flowpb.DropReason(f.GetDropReason())
	}
	switch {
	case f.GetIsReply() != nil:
		if f.GetIsReply().GetValue() {
			out.Reply = ReplyYes
		} else {
			out.Reply = ReplyNo
		}
	//lint:ignore SA1019 captures from before is_reply only have reply
	case f.GetReply():
		out.Reply = ReplyYes
	}
	var err error
	if out.Source, err = endpointFromProto("source", f.GetSource()); err != nil {
		return nil, err
	}
	if out.Destination, err = endpointFromProto("destination", f.GetDestination()); err != nil {
		return nil, err
	}
	if ip := f.GetIP(); ip != nil {
		if out.SrcIP, err = parseIP("IP.source", ip.GetSource()); err != nil {
			return nil, err
		}
		if out.DstIP, err = parseIP("IP.destination", ip.GetDestination()); err != nil {
			return nil, err
		}
	}
	if err := l4FromProto(out, f.GetL4()); err != nil {
		return nil, err
	}
	if out.SourceNames, err = names("source_names", f.GetSourceNames()); err != nil {
		return nil, err
	}
	if out.DestinationNames, err = names("destination_names", f.GetDestinationNames()); err != nil {
		return nil, err
	}
	if l7 := f.GetL7(); l7 != nil {
		if out.L7, err = l7FromProto(l7); err != nil {
			return nil, err
		}
	}
	out.EgressAllowedBy = policyRefs(f.GetEgressAllowedBy())
	out.IngressAllowedBy = policyRefs(f.GetIngressAllowedBy())
	out.EgressDeniedBy = policyRefs(f.GetEgressDeniedBy())
	out.IngressDeniedBy = policyRefs(f.GetIngressDeniedBy())
	return out, nil
}

func endpointFromProto(field string, ep *flowpb.Endpoint) (Endpoint, error) {
	if ep == nil {
		return Endpoint{}, nil
	}
	out := Endpoint{
		ID:        ep.GetID(),
		Identity:  ep.GetIdentity(),
		Cluster:   ep.GetClusterName(),
		Namespace: ep.GetNamespace(),
		PodName:   ep.GetPodName(),
		Labels:    ep.GetLabels(),
	}
	for i, l := range out.Labels {
		if err := validLabel(l); err != nil {
			return Endpoint{}, &FieldError{fmt.Sprintf("%s.labels[%d]", field, i), err.Error()}
		}
	}
	if !sortedStrings(out.Labels) {
		out.Labels = sortCopy(out.Labels)
	}
	for _, w := range ep.GetWorkloads() {
		out.Workloads = append(out.Workloads, Workload{Name: w.GetName(), Kind: w.GetKind()})
	}
	return out, nil
}

// validLabel checks the "source:key[=value]" form Hubble uses.
func validLabel(l string) error {
	src, rest, ok := strings.Cut(l, ":")
	switch {
	case l == "":
		return fmt.Errorf("empty label")
	case !ok || src == "":
		return fmt.Errorf("label %q has no source prefix (want source:key=value)", l)
	}
	key, _, _ := strings.Cut(rest, "=")
	if key == "" {
		return fmt.Errorf("label %q has an empty key", l)
	}
	for _, r := range l {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("label %q contains a control character", l)
		}
	}
	if strings.ContainsAny(src, " \t=/") {
		return fmt.Errorf("label %q has an invalid source %q", l, src)
	}
	return nil
}

func parseIP(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &FieldError{field, fmt.Sprintf("invalid IP address %q", s)}
	}
	return a.Unmap(), nil
}

func port(field string, p uint32) (uint16, error) {
	if p > 65535 {
		return 0, &FieldError{field, fmt.Sprintf("port %d out of range", p)}
	}
	return uint16(p), nil
}

func l4FromProto(out *Flow, l4 *flowpb.Layer4) error {
	var err error
	setPorts := func(proto string, src, dst uint32) error {
		if out.SrcPort, err = port("l4."+proto+".source_port", src); err != nil {
			return err
		}
		out.DstPort, err = port("l4."+proto+".destination_port", dst)
		return err
	}
	icmp := func(field string, typ, code uint32) error {
		if typ > 255 {
			return &FieldError{field + ".type", fmt.Sprintf("ICMP type %d out of range", typ)}
		}
		if code > 255 {
			return &FieldError{field + ".code", fmt.Sprintf("ICMP code %d out of range", code)}
		}
		out.ICMPType, out.ICMPCode = uint8(typ), uint8(code)
		return nil
	}
	switch p := l4.GetProtocol().(type) {
	case nil:
		return nil
	case *flowpb.Layer4_TCP:
		out.Proto = ProtoTCP
		out.TCPFlags = tcpFlags(p.TCP.GetFlags())
		return setPorts("TCP", p.TCP.GetSourcePort(), p.TCP.GetDestinationPort())
	case *flowpb.Layer4_UDP:
		out.Proto = ProtoUDP
		return setPorts("UDP", p.UDP.GetSourcePort(), p.UDP.GetDestinationPort())
	case *flowpb.Layer4_SCTP:
		out.Proto = ProtoSCTP
		return setPorts("SCTP", p.SCTP.GetSourcePort(), p.SCTP.GetDestinationPort())
	case *flowpb.Layer4_ICMPv4:
		out.Proto = ProtoICMPv4
		return icmp("l4.ICMPv4", p.ICMPv4.GetType(), p.ICMPv4.GetCode())
	case *flowpb.Layer4_ICMPv6:
		out.Proto = ProtoICMPv6
		return icmp("l4.ICMPv6", p.ICMPv6.GetType(), p.ICMPv6.GetCode())
	default:
		out.Proto = ProtoOther
		return nil
	}
}

func tcpFlags(f *flowpb.TCPFlags) TCPFlags {
	if f == nil {
		return 0
	}
	var out TCPFlags
	for _, b := range []struct {
		set  bool
		flag TCPFlags
	}{
		{f.GetFIN(), TCPFin}, {f.GetSYN(), TCPSyn}, {f.GetRST(), TCPRst}, {f.GetPSH(), TCPPsh},
		{f.GetACK(), TCPAck}, {f.GetURG(), TCPUrg}, {f.GetECE(), TCPEce}, {f.GetCWR(), TCPCwr}, {f.GetNS(), TCPNs},
	} {
		if b.set {
			out |= b.flag
		}
	}
	return out
}

func names(field string, in []string) ([]string, error) {
	for i, n := range in {
		if n == "" || !utf8.ValidString(n) || strings.ContainsAny(n, " \t\r\n") {
			return nil, &FieldError{fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("invalid DNS name %q", n)}
		}
	}
	return in, nil
}

func l7FromProto(l7 *flowpb.Layer7) (*L7, error) {
	out := &L7{Type: l7.GetType()}
	if h := l7.GetHttp(); h != nil {
		out.HTTP = &HTTP{Method: h.GetMethod(), URL: h.GetUrl(), Code: h.GetCode()}
		if hs := h.GetHeaders(); len(hs) > 0 {
			out.HTTP.Headers = make(map[string]string, len(hs))
			for _, hd := range hs {
				out.HTTP.Headers[strings.ToLower(hd.GetKey())] = hd.GetValue()
			}
		}
	}
	if d := l7.GetDns(); d != nil {
		out.DNS = &DNS{Query: d.GetQuery(), RCode: d.GetRcode(), QTypes: d.GetQtypes()}
		for i, s := range d.GetIps() {
			a, err := parseIP(fmt.Sprintf("l7.dns.ips[%d]", i), s)
			if err != nil {
				return nil, err
			}
			out.DNS.IPs = append(out.DNS.IPs, a)
		}
	}
	return out, nil
}

func policyRefs(in []*flowpb.Policy) []PolicyRef {
	if len(in) == 0 {
		return nil
	}
	out := make([]PolicyRef, 0, len(in))
	for _, p := range in {
		out = append(out, PolicyRef{Kind: p.GetKind(), Namespace: p.GetNamespace(), Name: p.GetName()})
	}
	return out
}
