package learn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/cnpgen/cnpgen/internal/flowjson"
)

// fileSource reads Hubble JSON from a file or stdin. Records are split by
// one goroutine and decoded by several, in batches, and handed out in
// input order: protojson decoding is most of the cost of learning.
type fileSource struct {
	name   string
	rd     *flowjson.Reader
	closer io.Closer

	order chan *batch
	stop  chan struct{}
	wg    sync.WaitGroup
	cur   *batch
	i     int
}

type batch struct {
	lines []int
	data  [][]byte
	errs  []error // delimiting errors, per record
	out   []Event
	err   error // a read error after the records
	done  chan struct{}
}

const batchSize = 256

// OpenFile opens a file of Hubble flows in any format [flowjson] reads:
// `hubble observe -o json/jsonpb` output, bare flows, exporter logs (also
// gzip-compressed), or a JSON array of those. The path "-" reads stdin.
func OpenFile(path string, stdin io.Reader) (Source, error) {
	if path == "-" {
		return NewReaderSource("-", stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := newFileSource(path, f, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return src, nil
}

// NewReaderSource reads Hubble flows from r; name is used in positions.
func NewReaderSource(name string, r io.Reader) (Source, error) {
	return newFileSource(name, r, nil)
}

func newFileSource(name string, r io.Reader, c io.Closer) (*fileSource, error) {
	rd, err := flowjson.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &fileSource{name: name, rd: rd, closer: c, order: make(chan *batch, 8), stop: make(chan struct{})}
	work := make(chan *batch, 8)
	workers := max(1, min(runtime.GOMAXPROCS(0), 8))
	s.wg.Add(1 + workers)
	go s.split(work)
	for range workers {
		go func() {
			defer s.wg.Done()
			for b := range work {
				s.decode(b)
				close(b.done)
			}
		}()
	}
	return s, nil
}

// split reads records into batches and queues them for decoding and, in
// order, for Next.
func (s *fileSource) split(work chan<- *batch) {
	defer s.wg.Done()
	defer close(work)
	defer close(s.order)
	for {
		b := &batch{done: make(chan struct{})}
		// A batch ends when full, or when reading on would wait for more
		// input: a pipe from `hubble observe --follow` is learned as it
		// arrives.
		for len(b.data) < batchSize && (len(b.data) == 0 || s.rd.Buffered()) {
			rec, err := s.rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.err = fmt.Errorf("%s: %w", s.name, err)
				} else {
					b.err = io.EOF
				}
				break
			}
			b.lines = append(b.lines, rec.Line)
			b.data = append(b.data, append([]byte(nil), rec.Data...))
			b.errs = append(b.errs, rec.Err)
		}
		select {
		case work <- b:
		case <-s.stop:
			return
		}
		select {
		case s.order <- b:
		case <-s.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

func (s *fileSource) decode(b *batch) {
	b.out = make([]Event, len(b.data))
	for i, data := range b.data {
		pos := Position{Source: s.name, Line: b.lines[i]}
		if b.errs[i] != nil {
			b.out[i] = malformed(pos, b.errs[i])
			continue
		}
		b.out[i] = decodeRecord(pos, data)
	}
	b.data = nil
}

// decodeRecord turns one JSON record into an event.
func decodeRecord(pos Position, data []byte) Event {
	d, err := flowjson.Decode(data)
	if err != nil {
		var se *flowjson.SyntaxError
		if errors.As(err, &se) && se.Line > 1 {
			// Multi-line record: point at the line inside it.
			pos.Line += se.Line - 1
		}
		return malformed(pos, err)
	}
	switch {
	case d.IsLost:
		return Event{Pos: pos, Kind: EventLost, Lost: d.Lost}
	case d.Other != "":
		return Event{Pos: pos, Kind: EventOther, Other: d.Other}
	}
	fl, err := FromProto(d.Flow)
	if err != nil {
		return malformed(pos, err)
	}
	if fl.Time.IsZero() {
		fl.Time = d.Time
	}
	if fl.NodeName == "" {
		fl.NodeName = d.NodeName
	}
	return Event{Pos: pos, Kind: EventFlow, Flow: fl}
}

func (s *fileSource) Name() string { return s.name }

// Close stops reading and releases the input. A file is closed, which
// ends a read in progress; stdin is not ours to close, so a read blocked
// on it is left to end with the process.
func (s *fileSource) Close() error {
	s.halt()
	// Drain so that the splitter can exit.
	go func() {
		for range s.order {
		}
	}()
	if s.closer == nil {
		return nil
	}
	err := s.closer.Close()
	s.wg.Wait()
	return errors.Join(err, s.rd.Close())
}

// Next returns the next event. Once ctx is done it stops reading, hands
// out what it had already read, and then returns ctx's error.
func (s *fileSource) Next(ctx context.Context) (Event, error) {
	for s.cur == nil || s.i >= len(s.cur.out) {
		if s.cur != nil && s.cur.err != nil {
			return Event{}, s.cur.err
		}
		if ctx.Err() != nil {
			s.halt()
		}
		var b *batch
		var ok bool
		select {
		case b, ok = <-s.order:
		case <-ctx.Done():
			s.halt()
			select {
			case b, ok = <-s.order:
			default:
				return Event{}, ctx.Err()
			}
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return Event{}, err
			}
			return Event{}, io.EOF
		}
		<-b.done // decoding a batch does not wait for input
		s.cur, s.i = b, 0
	}
	ev := s.cur.out[s.i]
	s.cur.out[s.i] = Event{}
	s.i++
	return ev, nil
}

// halt stops the splitter; batches it already queued stay readable.
func (s *fileSource) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

func malformed(pos Position, err error) Event {
	return Event{Pos: pos, Kind: EventMalformed, Err: &RecordError{Pos: pos, Err: err}}
}
