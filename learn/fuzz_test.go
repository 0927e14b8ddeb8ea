package learn

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLearn feeds arbitrary input through the file source and the learner:
// no panic, every record is accounted for, and the resulting graph
// survives its own file format unchanged.
func FuzzLearn(f *testing.F) {
	files, _ := filepath.Glob("../testdata/flows/*/*.json*")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 16<<20)
		var chunk []byte
		for i := 0; i < 6 && sc.Scan(); i++ {
			chunk = append(append(chunk, sc.Bytes()...), '\n')
		}
		f.Add(chunk)
	}
	f.Add([]byte(goodLine + "\n" + goodLine[:50] + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := NewReaderSource("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		g := NewGraph()
		l := NewLearner(g, nil)
		if err := l.Learn(context.Background(), src, nil); err != nil {
			t.Fatalf("learn: %v", err)
		}
		s := l.Summary()
		var skipped uint64
		for _, n := range s.Skipped {
			skipped += n
		}
		if s.Used+skipped != s.Records {
			t.Fatalf("records %d != used %d + skipped %d", s.Records, s.Used, skipped)
		}
		enc := g.Encode()
		back, err := DecodeGraph(enc)
		if err != nil {
			t.Fatalf("decoding the learned graph: %v\n%s", err, enc)
		}
		if again := back.Encode(); !bytes.Equal(enc, again) {
			t.Fatalf("graph changed through its file format:\n%s\n%s", enc, again)
		}
	})
}
