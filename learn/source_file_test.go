package learn

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const goodLine = `{"flow":{"time":"2026-11-01T10:00:00Z","verdict":"FORWARDED","IP":{"source":"10.244.1.5","destination":"10.244.2.7","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":41234,"destination_port":8080,"flags":{"SYN":true}}},"source":{"identity":1000,"namespace":"shop","labels":["k8s:app=frontend","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"frontend-7d9c8b6f4d-x2kq9"},"destination":{"identity":1001,"namespace":"shop","labels":["k8s:app=catalog","k8s:io.kubernetes.pod.namespace=shop"],"pod_name":"catalog-5f7b9c6d8f-q4tr9"},"Type":"L3_L4","event_type":{"type":4},"traffic_direction":"EGRESS","is_reply":false},"node_name":"n1","time":"2026-11-01T10:00:00Z"}`

// events reads every event of a source and describes it.
func events(t *testing.T, name, in string) []string {
	t.Helper()
	src, err := NewReaderSource(name, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []string
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case EventFlow:
			out = append(out, ev.Pos.String()+": flow "+ev.Flow.Source.PodName)
		case EventLost:
			out = append(out, ev.Pos.String()+": lost")
		case EventOther:
			out = append(out, ev.Pos.String()+": "+ev.Other)
		case EventMalformed:
			out = append(out, ev.Err.Error())
		}
	}
}

func TestFileSourceBadInput(t *testing.T) {
	bad := func(from, to string) string {
		if !strings.Contains(goodLine, from) {
			t.Fatalf("%q not in the good line", from)
		}
		return strings.Replace(goodLine, from, to, 1)
	}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"truncated JSON", goodLine[:100], "f.json:2: truncated JSON: unexpected end of record"},
		{"wrong type", bad(`"destination_port":8080`, `"destination_port":"http"`), `f.json:2: column 189: invalid value for uint32 field destinationPort: "http"`},
		{"invalid label", bad(`"k8s:app=frontend"`, `"app=frontend"`), `f.json:2: source.labels[0]: label "app=frontend" has no source prefix (want source:key=value)`},
		{"empty label key", bad(`"k8s:app=catalog"`, `"k8s:=catalog"`), `f.json:2: destination.labels[0]: label "k8s:=catalog" has an empty key`},
		{"port out of range", bad(`"destination_port":8080`, `"destination_port":70000`), "f.json:2: l4.TCP.destination_port: port 70000 out of range"},
		{"invalid IP", bad(`"10.244.2.7"`, `"10.244.2.777"`), `f.json:2: IP.destination: invalid IP address "10.244.2.777"`},
		{"invalid UTF-8", bad(`"n1"`, "\"n\xff\""), "f.json:2: column 626: invalid UTF-8 in string"},
		{"bad time", bad(`"time":"2026-11-01T10:00:00Z"`, `"time":"yesterday"`), `f.json:2: column 17: invalid google.protobuf.Timestamp value "yesterday"`},
		{"not an event", `{"hello":"world"}`, "f.json:2: no flow, lost_events, node_status, agent_event or debug_event in record"},
		{"not an object", `[1,2]`, "f.json:2: column 1: unexpected token ["},
		{"20 MiB line", `{"x":"` + strings.Repeat("y", 20<<20) + `"}`, "f.json:2: record longer than 16 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := goodLine + "\n" + tc.line + "\n" + goodLine + "\n"
			want := []string{"f.json:1: flow frontend-7d9c8b6f4d-x2kq9", tc.want, "f.json:3: flow frontend-7d9c8b6f4d-x2kq9"}
			if diff := cmp.Diff(want, events(t, "f.json", in)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFileSourceFormats(t *testing.T) {
	bare := strings.TrimSuffix(strings.TrimPrefix(goodLine, `{"flow":`), `,"node_name":"n1","time":"2026-11-01T10:00:00Z"}`)
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{
			name: "hubble observe -o jsonpb with lost events",
			in:   goodLine + "\n" + `{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"1"},"node_name":"kubernetes/worker1","time":"2025-09-28T08:25:44.749505064Z"}` + "\n",
			want: []string{"f:1: flow frontend-7d9c8b6f4d-x2kq9", "f:2: lost"},
		},
		{
			name: "legacy bare flows",
			in:   bare + "\n" + bare + "\n",
			want: []string{"f:1: flow frontend-7d9c8b6f4d-x2kq9", "f:2: flow frontend-7d9c8b6f4d-x2kq9"},
		},
		{
			name: "exporter log",
			in: goodLine + "\n" + `{"agent_event":{},"node_name":"my-node","time":"1970-01-01T00:00:02Z"}` + "\n" +
				`{"debug_event":{},"node_name":"my-node","time":"1970-01-01T00:00:03Z"}` + "\n" +
				`{"node_status":{"state_change":"NODE_CONNECTED"}}` + "\n",
			want: []string{"f:1: flow frontend-7d9c8b6f4d-x2kq9", "f:2: agent_event", "f:3: debug_event", "f:4: node_status"},
		},
		{
			name: "JSON array",
			in:   "[\n" + goodLine + ",\n" + bare + "\n]\n",
			want: []string{"f:2: flow frontend-7d9c8b6f4d-x2kq9", "f:3: flow frontend-7d9c8b6f4d-x2kq9"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, events(t, "f", tc.in)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
