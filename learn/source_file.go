package learn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cnpgen/cnpgen/internal/flowjson"
)

// fileSource reads Hubble JSON from a file or stdin.
type fileSource struct {
	name   string
	rd     *flowjson.Reader
	closer io.Closer
	n      int
}

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
	return &fileSource{name: name, rd: rd, closer: c}, nil
}

func (s *fileSource) Name() string { return s.name }

func (s *fileSource) Close() error {
	err := s.rd.Close()
	if s.closer != nil {
		err = errors.Join(err, s.closer.Close())
	}
	return err
}

func (s *fileSource) Next(ctx context.Context) (Event, error) {
	if s.n++; s.n%1024 == 0 {
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
	}
	rec, err := s.rd.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Event{}, io.EOF
		}
		return Event{}, fmt.Errorf("%s: %w", s.name, err)
	}
	pos := Position{Source: s.name, Line: rec.Line}
	if rec.Err != nil {
		return malformed(pos, rec.Err), nil
	}
	d, err := flowjson.Decode(rec.Data)
	if err != nil {
		var se *flowjson.SyntaxError
		if errors.As(err, &se) && se.Line > 1 {
			// Multi-line record: point at the line inside it.
			pos.Line += se.Line - 1
		}
		return malformed(pos, err), nil
	}
	switch {
	case d.IsLost:
		return Event{Pos: pos, Kind: EventLost, Lost: d.Lost}, nil
	case d.Other != "":
		return Event{Pos: pos, Kind: EventOther, Other: d.Other}, nil
	}
	fl, err := FromProto(d.Flow)
	if err != nil {
		return malformed(pos, err), nil
	}
	if fl.Time.IsZero() {
		fl.Time = d.Time
	}
	if fl.NodeName == "" {
		fl.NodeName = d.NodeName
	}
	return Event{Pos: pos, Kind: EventFlow, Flow: fl}, nil
}

func malformed(pos Position, err error) Event {
	return Event{Pos: pos, Kind: EventMalformed, Err: &RecordError{Pos: pos, Err: err}}
}
