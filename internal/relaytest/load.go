package relaytest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cnpgen/cnpgen/internal/flowjson"
)

// LoadFile reads a Hubble JSON capture as responses, sorted by time as
// Hubble Relay sends them.
func LoadFile(tb testing.TB, path string) []*observer.GetFlowsResponse {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return Parse(tb, data)
}

// Parse is LoadFile on bytes.
func Parse(tb testing.TB, data []byte) []*observer.GetFlowsResponse {
	tb.Helper()
	rd, err := flowjson.NewReader(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	var out []*observer.GetFlowsResponse
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || rec.Err != nil {
			tb.Fatal(err, rec.Err)
		}
		r := new(observer.GetFlowsResponse)
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(rec.Data, r); err != nil {
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b *observer.GetFlowsResponse) int {
		return a.GetTime().AsTime().Compare(b.GetTime().AsTime())
	})
	return out
}

// Encode writes responses as `hubble observe -o jsonpb` lines.
func Encode(tb testing.TB, rs []*observer.GetFlowsResponse) []byte {
	tb.Helper()
	var b bytes.Buffer
	for _, r := range rs {
		line, err := protojson.Marshal(r)
		if err != nil {
			tb.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
