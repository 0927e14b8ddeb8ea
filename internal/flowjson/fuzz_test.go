package flowjson

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// seedLines adds the first lines of every real capture to the corpus.
func seedLines(f *testing.F, perFile int) {
	files, _ := filepath.Glob("../../testdata/flows/*/*.json*")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, MaxRecordBytes)
		for i := 0; i < perFile && sc.Scan(); i++ {
			f.Add(bytes.Clone(sc.Bytes()))
		}
	}
	for _, s := range []string{
		`{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"1"}}`,
		`{"agent_event":{}}`, `{"node_status":{}}`, `{}`, `[]`, `null`, `"x"`,
		`{"flow":{"l4":{"TCP":{"destination_port":70000}}}}`,
		`{"flow":{"source":{"labels":["=x","k8s:"]}}}`,
		"{\"flow\":{\"node_name\":\"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
}

// FuzzDecode: Decode returns a value or an error, never panics, never both.
func FuzzDecode(f *testing.F) {
	seedLines(f, 3)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil && (d.Flow != nil || d.IsLost || d.Other != "") {
			t.Fatalf("both a value and an error: %+v, %v", d, err)
		}
		if err == nil && d.Flow == nil && !d.IsLost && d.Other == "" {
			t.Fatalf("neither a value nor an error")
		}
	})
}

// FuzzReader: the reader splits any input into records without panicking,
// and every record is a sub-slice of the input or an error.
func FuzzReader(f *testing.F) {
	seedLines(f, 2)
	f.Add([]byte("[\n{\"a\":1},\n{\"b\""))
	f.Add([]byte("{\n \"a\": 1\n}\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		for range len(data) + 2 {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				return
			}
			if rec.Err == nil && len(rec.Data) == 0 {
				t.Fatalf("empty record at line %d", rec.Line)
			}
		}
		t.Fatalf("reader did not reach EOF")
	})
}
