package learn

import (
	"context"
	"fmt"
)

// Source yields flow events with their position. File readers, stdin and
// the live Hubble Relay stream all implement it, so every source is learned
// and tested the same way.
type Source interface {
	// Next returns the next event, or io.EOF when the source is exhausted.
	// A record that cannot be decoded is returned as an event of kind
	// [EventMalformed], not as an error: errors end the source.
	Next(ctx context.Context) (Event, error)
	// Name identifies the source in messages ("flows.json", "-",
	// "relay localhost:4245").
	Name() string
	Close() error
}

// EventKind says what a source event holds.
type EventKind uint8

const (
	// EventFlow carries a flow.
	EventFlow EventKind = iota
	// EventLost reports events Hubble lost (ring buffer overflow and the like).
	EventLost
	// EventOther is any other record: node status, agent or debug events.
	EventOther
	// EventMalformed is a record that could not be decoded.
	EventMalformed
	// EventIdle is no record: a live source has been waiting for a while,
	// and says so, so that checkpoints and progress go on.
	EventIdle
)

// OtherNodeError is the Other of an event that reports a Hubble node
// erroring or unavailable: flows from it are missing.
const OtherNodeError = "node_error"

// Event is one record read from a source.
type Event struct {
	Pos  Position
	Kind EventKind
	// Flow is set for EventFlow.
	Flow *Flow
	// Lost is the number of events lost, for EventLost.
	Lost uint64
	// Other names the record type for EventOther ("agent_event").
	Other string
	// Err says what is wrong, for EventMalformed.
	Err error
}

// Position locates an event in its source: a line of a file, or an offset in
// a stream.
type Position struct {
	Source string
	// Line is the 1-based line where the record starts; 0 for streams.
	Line int
	// Offset is the record's index in a stream, when Line is 0.
	Offset int64
}

func (p Position) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d", p.Source, p.Line)
	}
	return fmt.Sprintf("%s#%d", p.Source, p.Offset)
}

// RecordError is a malformed record at a position.
type RecordError struct {
	Pos Position
	Err error
}

func (e *RecordError) Error() string { return e.Pos.String() + ": " + e.Err.Error() }
func (e *RecordError) Unwrap() error { return e.Err }
