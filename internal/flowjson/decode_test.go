package flowjson

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	type result struct {
		Flow     bool
		Verdict  string
		Lost     uint64
		IsLost   bool
		Other    string
		NodeName string
		Time     time.Time
		Err      string
	}
	ts := time.Date(2026, 9, 13, 4, 38, 6, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   string
		want result
	}{
		{
			name: "GetFlowsResponse",
			in:   `{"flow":{"verdict":"FORWARDED","IP":{"source":"10.0.0.1"}},"node_name":"n1","time":"2026-09-13T04:38:06Z"}`,
			want: result{Flow: true, Verdict: "FORWARDED", NodeName: "n1", Time: ts},
		},
		{
			name: "bare legacy flow",
			in:   `{"time":"2026-09-13T04:38:06Z","verdict":"DROPPED","IP":{"source":"10.0.0.1"},"node_name":"n2"}`,
			want: result{Flow: true, Verdict: "DROPPED", NodeName: "n2", Time: ts},
		},
		{
			name: "unknown fields from a newer Cilium are discarded",
			in:   `{"flow":{"verdict":"FORWARDED","brand_new_field":{"x":1}},"also_new":true}`,
			want: result{Flow: true, Verdict: "FORWARDED"},
		},
		{
			name: "lost events",
			in:   `{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3","cpu":5},"node_name":"n1"}`,
			want: result{IsLost: true, Lost: 3, NodeName: "n1"},
		},
		{
			name: "node status",
			in:   `{"node_status":{"state_change":"NODE_CONNECTED","node_names":["a"]}}`,
			want: result{Other: "node_status"},
		},
		{
			name: "agent event",
			in:   `{"agent_event":{},"node_name":"my-node","time":"1970-01-01T00:00:02Z"}`,
			want: result{Other: "agent_event", NodeName: "my-node", Time: time.Unix(2, 0).UTC()},
		},
		{
			name: "debug event",
			in:   `{"debug_event":{}}`,
			want: result{Other: "debug_event"},
		},
		{
			name: "not an event",
			in:   `{"hello":"world"}`,
			want: result{Err: ErrNoEvent.Error()},
		},
		{
			name: "truncated",
			in:   `{"flow":{"verdict":"FORWARDED"`,
			want: result{Err: "truncated JSON: unexpected end of record"},
		},
		{
			name: "wrong type",
			in:   `{"flow":{"l4":{"TCP":{"destination_port":"http"}}}}`,
			want: result{Err: `column 42: invalid value for uint32 field destinationPort: "http"`},
		},
		{
			name: "invalid UTF-8",
			in:   "{\"flow\":{\"node_name\":\"\xff\"}}",
			want: result{Err: "column 22: invalid UTF-8 in string"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decode([]byte(tc.in))
			var got result
			if err != nil {
				got.Err = err.Error()
			} else {
				got = result{Flow: d.Flow != nil, Lost: d.Lost, IsLost: d.IsLost, Other: d.Other, NodeName: d.NodeName, Time: d.Time}
				if d.Flow != nil {
					got.Verdict = d.Flow.GetVerdict().String()
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeErrorPosition(t *testing.T) {
	_, err := Decode([]byte("{\n  \"flow\": {\n    \"verdict\": 7.5\n  }\n}"))
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *SyntaxError", err)
	}
	if se.Line != 3 {
		t.Errorf("line %d, want 3 (%v)", se.Line, err)
	}
}
