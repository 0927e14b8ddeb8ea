package flowjson

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type rec struct {
	Line int
	Data string
	Err  string
}

func readAll(t *testing.T, in []byte) []rec {
	t.Helper()
	r, err := NewReader(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []rec
	for {
		x, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		got := rec{Line: x.Line, Data: string(x.Data)}
		if x.Err != nil {
			got.Err = x.Err.Error()
		}
		out = append(out, got)
	}
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []rec
	}{
		{
			name: "json lines",
			in:   []byte("{\"a\":1}\n{\"b\":2}\n"),
			want: []rec{{1, `{"a":1}`, ""}, {2, `{"b":2}`, ""}},
		},
		{
			name: "blank lines, CRLF, BOM, no final newline",
			in:   []byte("\xef\xbb\xbf{\"a\":1}\r\n\r\n  \n{\"b\":2}"),
			want: []rec{{1, `{"a":1}`, ""}, {4, `{"b":2}`, ""}},
		},
		{
			name: "truncated line is passed on for the decoder to reject",
			in:   []byte("{\"a\":1}\n{\"b\":\n{\"c\":3}\n"),
			want: []rec{{1, `{"a":1}`, ""}, {2, `{"b":`, ""}, {3, `{"c":3}`, ""}},
		},
		{
			name: "json array",
			in:   []byte("[\n  {\"a\": 1},\n  {\n    \"b\": 2\n  }\n]\n"),
			want: []rec{{2, `{"a": 1}`, ""}, {3, "{\n    \"b\": 2\n  }", ""}},
		},
		{
			name: "empty array",
			in:   []byte("[]"),
		},
		{
			name: "concatenated pretty objects",
			in:   []byte("{\n  \"a\": 1\n}\n{\n  \"b\": 2\n}\n"),
			want: []rec{{1, "{\n  \"a\": 1\n}", ""}, {4, "{\n  \"b\": 2\n}", ""}},
		},
		{
			name: "broken array ends at the error",
			in:   []byte("[\n{\"a\":1},\n{\"b\":\n"),
			want: []rec{{2, `{"a":1}`, ""}, {4, "", "unexpected end of input"}},
		},
		{
			name: "gzip",
			in:   gz("{\"a\":1}\n{\"b\":2}\n"),
			want: []rec{{1, `{"a":1}`, ""}, {2, `{"b":2}`, ""}},
		},
		{
			name: "gzip array",
			in:   gz("[{\"a\":1}]"),
			want: []rec{{1, `{"a":1}`, ""}},
		},
		{
			name: "empty input",
			in:   nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, readAll(t, tc.in)); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderLongLines(t *testing.T) {
	// Lines up to the limit are read whole; longer ones are reported and
	// skipped, and reading goes on with the next line.
	ok := `{"x":"` + strings.Repeat("a", MaxRecordBytes-8) + `"}`
	tooLong := `{"x":"` + strings.Repeat("b", 20<<20) + `"}`
	in := []byte("{\"a\":1}\n" + ok + "\n" + tooLong + "\n{\"c\":3}\n")
	got := readAll(t, in)
	if len(got) != 4 {
		t.Fatalf("got %d records, want 4", len(got))
	}
	if got[1].Data != ok || got[1].Line != 2 {
		t.Errorf("record at the limit: line %d, %d bytes, want line 2, %d bytes", got[1].Line, len(got[1].Data), len(ok))
	}
	if got[2].Err != ErrTooLong.Error() || got[2].Line != 3 {
		t.Errorf("over-long record: %+v", got[2].Err)
	}
	if diff := cmp.Diff(rec{4, `{"c":3}`, ""}, got[3]); diff != "" {
		t.Errorf("record after the long line (-want +got):\n%s", diff)
	}
}

func TestReaderBrokenFirstLine(t *testing.T) {
	// A truncated first line must not switch the reader to stream mode,
	// which would lose the rest of the file.
	got := readAll(t, []byte("{\"flow\":{\"verdict\":\n{\"b\":2}\n"))
	want := []rec{{1, `{"flow":{"verdict":`, ""}, {2, `{"b":2}`, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
}
