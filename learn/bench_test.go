package learn

import (
	"bufio"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cnpgen/cnpgen/internal/flowgen"
	"github.com/cnpgen/cnpgen/internal/flowjson"
)

// BenchmarkLearn learns 100k demo flows from JSON and reports flows/s,
// and its time as a ratio of the baseline measured in the same run:
// splitting the lines and decoding them with protojson, the reference
// decoder, which a learner cannot beat without a faster decoder.
func BenchmarkLearn(b *testing.B) {
	var in bytes.Buffer
	if _, err := flowgen.Write(&in, flowgen.Options{Seed: 1, Flows: 100_000}); err != nil {
		b.Fatal(err)
	}
	data := in.Bytes()
	n := float64(bytes.Count(data, []byte("\n")))

	baseline := timeOf(b, func() {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, flowjson.MaxRecordBytes)
		for sc.Scan() {
			if _, err := flowjson.Decode(sc.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	iters := 0
	for b.Loop() {
		src, err := NewReaderSource("bench", bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if err := NewLearner(NewGraph(), nil).Learn(context.Background(), src, nil); err != nil {
			b.Fatal(err)
		}
		iters++
	}
	per := time.Since(start) / time.Duration(iters)
	b.ReportMetric(n/per.Seconds(), "flows/s")
	b.ReportMetric(float64(per)/float64(baseline), "x-decode-baseline")
}

// timeOf returns the best of three runs of f.
func timeOf(b *testing.B, f func()) time.Duration {
	b.Helper()
	best := time.Duration(1<<63 - 1)
	for range 3 {
		t := time.Now()
		f()
		best = min(best, time.Since(t))
	}
	return best
}
