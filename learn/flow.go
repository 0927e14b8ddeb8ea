package learn

import (
	"net/netip"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
)

// Flow is the normalised form of one Hubble flow event: only what learning,
// filtering and evaluating need. Sources produce it from protobuf flows
// ([FromProto]) or, in a specialised decoder, directly.
//
// Source and Destination are those of the packet, as Hubble reports them;
// the [Learner] turns replies back into the request direction.
type Flow struct {
	Time     time.Time
	NodeName string
	UUID     string

	Verdict    flowpb.Verdict
	DropReason flowpb.DropReason
	// EventType is the monitor message type (1 drop, 4 trace,
	// 5 policy verdict, 7 socket trace, 129 L7) and EventSubType its subtype.
	EventType    int32
	EventSubType int32
	Type         flowpb.FlowType
	ObsPoint     flowpb.TraceObservationPoint
	Direction    flowpb.TrafficDirection
	// Reply is whether the packet belongs to the reply direction of its
	// connection, as far as Hubble knows.
	Reply Reply

	Source      Endpoint
	Destination Endpoint
	SrcIP       netip.Addr
	DstIP       netip.Addr

	Proto    Protocol
	SrcPort  uint16
	DstPort  uint16
	ICMPType uint8
	ICMPCode uint8
	TCPFlags TCPFlags

	SourceNames      []string
	DestinationNames []string

	L7 *L7

	EgressAllowedBy  []PolicyRef
	IngressAllowedBy []PolicyRef
	EgressDeniedBy   []PolicyRef
	IngressDeniedBy  []PolicyRef
}

// Reply is a tri-state: Hubble omits is_reply when it does not know.
type Reply uint8

const (
	ReplyUnknown Reply = iota
	ReplyNo
	ReplyYes
)

// Endpoint is one end of a flow.
type Endpoint struct {
	ID        uint32
	Identity  uint32
	Cluster   string
	Namespace string
	PodName   string
	// Labels are the identity labels in Cilium's "source:key=value" form,
	// sorted, as Hubble reports them.
	Labels    []string
	Workloads []Workload
}

// Workload names the controller that owns a pod.
type Workload struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// Protocol is the L4 protocol of a flow.
type Protocol uint8

const (
	ProtoUnknown Protocol = iota
	ProtoTCP
	ProtoUDP
	ProtoSCTP
	ProtoICMPv4
	ProtoICMPv6
	// ProtoOther covers L4 protocols policy cannot select (VRRP, IGMP).
	ProtoOther
)

var protoNames = [...]string{"", "TCP", "UDP", "SCTP", "ICMPv4", "ICMPv6", "OTHER"}

func (p Protocol) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return "OTHER"
}

// ParseProtocol is the inverse of [Protocol.String].
func ParseProtocol(s string) (Protocol, bool) {
	for i, n := range protoNames {
		if n == s && i != 0 {
			return Protocol(i), true
		}
	}
	return ProtoUnknown, false
}

// IsICMP reports whether p is ICMPv4 or ICMPv6.
func (p Protocol) IsICMP() bool { return p == ProtoICMPv4 || p == ProtoICMPv6 }

// TCPFlags is a bit set of the TCP flags Hubble reports.
type TCPFlags uint16

const (
	TCPFin TCPFlags = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
	TCPNs
)

// L7 is the proxy's record of a request or response.
type L7 struct {
	Type flowpb.L7FlowType
	HTTP *HTTP
	DNS  *DNS
}

// HTTP is an HTTP request or response seen by the L7 proxy.
type HTTP struct {
	Method string
	URL    string
	Code   uint32
	// Headers are the request headers Hubble shows (lower-case names),
	// nil when it shows none.
	Headers map[string]string
}

// DNS is a DNS request or response seen by the DNS proxy.
type DNS struct {
	Query  string
	IPs    []netip.Addr
	RCode  uint32
	QTypes []string
}

// PolicyRef names a policy that Hubble says allowed or denied a flow.
type PolicyRef struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String formats the reference as kind:namespace/name, leaving out the
// parts Hubble did not give.
func (p PolicyRef) String() string {
	s := p.Name
	if p.Namespace != "" {
		s = p.Namespace + "/" + s
	}
	if p.Kind != "" {
		s = p.Kind + ":" + s
	}
	return s
}
