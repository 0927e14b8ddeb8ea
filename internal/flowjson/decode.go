package flowjson

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
)

// Decoded is what one record holds. Exactly one of Flow, Lost (with
// IsLost), or Other is meaningful.
type Decoded struct {
	Flow *flowpb.Flow
	// IsLost marks a lost_events record; Lost is how many events it reports.
	IsLost bool
	Lost   uint64
	// Other names a record that is neither a flow nor lost events:
	// "node_status", "agent_event", "debug_event".
	Other string
	// NodeName and Time are the envelope's, when it has them.
	NodeName string
	Time     time.Time
}

var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// ErrNoEvent is returned for a JSON object that holds no Hubble event.
var ErrNoEvent = errors.New("no flow, lost_events, node_status, agent_event or debug_event in record")

// Decode decodes one record: a GetFlowsResponse or exporter ExportEvent
// (`{"flow":{…},"node_name":…,"time":…}`), or a bare Flow as printed by old
// CLIs and HUBBLE_COMPAT=legacy-json-output. Unknown fields are discarded,
// so records from any Cilium version since 1.10 decode.
func Decode(data []byte) (Decoded, error) {
	var ev observer.ExportEvent
	if err := unmarshal.Unmarshal(data, &ev); err != nil {
		return Decoded{}, cleanError(err)
	}
	d := Decoded{NodeName: ev.GetNodeName()}
	if ts := ev.GetTime(); ts != nil {
		d.Time = ts.AsTime()
	}
	switch ev.GetResponseTypes().(type) {
	case *observer.ExportEvent_Flow:
		d.Flow = ev.GetFlow()
	case *observer.ExportEvent_LostEvents:
		d.IsLost = true
		d.Lost = ev.GetLostEvents().GetNumEventsLost()
	case *observer.ExportEvent_NodeStatus:
		d.Other = "node_status"
	case *observer.ExportEvent_AgentEvent:
		d.Other = "agent_event"
	case *observer.ExportEvent_DebugEvent:
		d.Other = "debug_event"
	default:
		// A bare flow: its time and node_name were read as the envelope's.
		f := new(flowpb.Flow)
		if err := unmarshal.Unmarshal(data, f); err != nil {
			return Decoded{}, cleanError(err)
		}
		if !looksLikeFlow(f) {
			return Decoded{}, ErrNoEvent
		}
		d.Flow = f
	}
	return d, nil
}

func looksLikeFlow(f *flowpb.Flow) bool {
	return f.GetVerdict() != flowpb.Verdict_VERDICT_UNKNOWN || f.GetIP() != nil || f.GetL4() != nil ||
		f.GetSource() != nil || f.GetDestination() != nil || f.GetEventType() != nil ||
		f.GetType() != flowpb.FlowType_UNKNOWN_TYPE || f.GetL7() != nil
}

// protojson writes "proto: (line 1:42): msg" or "proto: syntax error
// (line 1:22): msg", with a space or a no-break space chosen at random.
var protoErrPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(?:syntax error[\s\x{00a0}]*)?(?:\(line (\d+):(\d+)\):[\s\x{00a0}]*)?`)

// SyntaxError is a decode error with the position protojson gave.
type SyntaxError struct {
	// Line is 1-based within the record; Column is 1-based.
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
	}
	return e.Msg
}

// cleanError turns protojson's "proto: (line 1:45): msg" into a
// [SyntaxError] so callers can report file:line: column 45: msg.
func cleanError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.HasSuffix(err.Error(), "unexpected EOF") {
		return &SyntaxError{Msg: "truncated JSON: unexpected end of record"}
	}
	s := err.Error()
	m := protoErrPrefix.FindStringSubmatchIndex(s)
	if m == nil {
		return err
	}
	se := &SyntaxError{Msg: s[m[1]:]}
	if m[2] >= 0 {
		se.Line, _ = strconv.Atoi(s[m[2]:m[3]])
		se.Column, _ = strconv.Atoi(s[m[4]:m[5]])
	}
	return se
}
