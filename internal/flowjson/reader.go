package flowjson

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxRecordBytes is the longest record the reader accepts. Hubble's own
// CLI stops at 64 KiB, which real flows with many labels or HTTP headers
// exceed; anything up to 16 MiB is read.
const MaxRecordBytes = 16 << 20

// Record is one JSON value read from a stream.
type Record struct {
	// Line is the 1-based line on which the record starts.
	Line int
	// Data is the record's bytes. It is only valid until the next call to
	// [Reader.Next].
	Data []byte
	// Err is set when the record could not be delimited (an over-long line,
	// a syntax error inside a JSON array). Reading continues after it
	// where that is possible.
	Err error
}

// ErrTooLong is the error of a record longer than [MaxRecordBytes].
var ErrTooLong = fmt.Errorf("record longer than %d MiB", MaxRecordBytes>>20)

type mode uint8

const (
	modeLines  mode = iota // one JSON value per line
	modeStream             // a JSON array, or JSON values spread over lines
)

// Reader splits a Hubble JSON stream into records, detecting its format
// from its first bytes: gzip or not, JSON lines, a JSON array, or
// concatenated pretty-printed objects.
type Reader struct {
	br   *bufio.Reader
	mode mode
	line int // lines consumed so far
	buf  []byte

	// stream mode
	data       []byte
	dec        *json.Decoder
	inArray    bool
	lastOff    int64
	countedOff int
	done       bool
	closer     io.Closer
}

// NewReader returns a reader for r. It reads ahead to detect the format; an
// error is returned only if r itself fails.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	rd := &Reader{}
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		rd.closer = zr
		br = bufio.NewReaderSize(zr, 256<<10)
	}
	rd.br = br
	first, err := firstLine(br)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(first)
	// A JSON array, or pretty-printed objects (whose first line is a lone
	// brace), are read as a stream of values; anything else line by line,
	// so that one broken line costs one record.
	if len(trimmed) > 0 && (trimmed[0] == '[' || string(trimmed) == "{") {
		if err := rd.startStream(); err != nil {
			return nil, err
		}
	}
	return rd, nil
}

// firstLine peeks at the first non-blank line without consuming it, up to a
// bounded size.
func firstLine(br *bufio.Reader) ([]byte, error) {
	for n := 4096; ; n *= 2 {
		b, err := br.Peek(n)
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		start := bytes.IndexFunc(b, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' })
		if start >= 0 {
			if end := bytes.IndexByte(b[start:], '\n'); end >= 0 {
				return b[start : start+end], nil
			}
		}
		if err != nil || n >= MaxRecordBytes {
			if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) || err == nil {
				if start < 0 {
					return nil, nil
				}
				return b[start:], nil
			}
			return nil, err
		}
	}
}

func (r *Reader) startStream() error {
	data, err := io.ReadAll(r.br)
	if err != nil {
		return err
	}
	r.mode = modeStream
	r.data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r.dec = json.NewDecoder(bytes.NewReader(r.data))
	r.dec.UseNumber()
	return nil
}

// Close releases the gzip reader, if any. It does not close the underlying
// reader.
func (r *Reader) Close() error {
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Buffered reports whether the next record can be read without waiting
// for the underlying reader, as far as the reader can tell: a streaming
// caller can hand out what it has before it blocks.
func (r *Reader) Buffered() bool {
	return r.mode == modeStream || r.br.Buffered() > 0
}

// Next returns the next record, or io.EOF.
func (r *Reader) Next() (Record, error) {
	if r.mode == modeStream {
		return r.nextStream()
	}
	return r.nextLine()
}

func (r *Reader) nextLine() (Record, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil && (len(line) == 0 && !tooLong) {
			return Record{}, err
		}
		r.line++
		if tooLong {
			return Record{Line: r.line, Err: ErrTooLong}, nil
		}
		line = bytes.TrimSpace(line)
		if r.line == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 {
			if err != nil {
				return Record{}, err
			}
			continue
		}
		return Record{Line: r.line, Data: line}, nil
	}
}

// readLine reads one line without its newline. A line longer than
// MaxRecordBytes is consumed and reported as too long.
func (r *Reader) readLine() (line []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(r.buf)+len(chunk) > MaxRecordBytes+1 {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(r.buf, []byte("\n")), tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return r.buf, tooLong, err
		}
	}
}

func (r *Reader) nextStream() (Record, error) {
	if r.done {
		return Record{}, io.EOF
	}
	if r.lastOff == 0 {
		// Is the stream a JSON array? Look at the first token.
		off := skipSpace(r.data, 0)
		if off < len(r.data) && r.data[off] == '[' {
			if _, err := r.dec.Token(); err != nil {
				return r.fail(err)
			}
			r.inArray = true
		}
	}
	if r.inArray && !r.dec.More() {
		if _, err := r.dec.Token(); err != nil { // the closing bracket
			return r.fail(err)
		}
		r.inArray = false
	}
	start := skipSpace(r.data, int(r.dec.InputOffset()))
	if start < len(r.data) && r.data[start] == ',' {
		start = skipSpace(r.data, start+1)
	}
	if start >= len(r.data) {
		r.done = true
		return Record{}, io.EOF
	}
	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		r.lastOff = int64(start) + 1
		return r.failAt(start, err)
	}
	r.lastOff = r.dec.InputOffset()
	return Record{Line: r.lineAt(start), Data: raw}, nil
}

func (r *Reader) fail(err error) (Record, error) {
	return r.failAt(int(r.dec.InputOffset()), err)
}

// failAt reports a syntax error; the rest of the stream cannot be delimited
// reliably, so it ends the stream.
func (r *Reader) failAt(off int, err error) (Record, error) {
	r.done = true
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = int(se.Offset)
		if off > 0 {
			off--
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = errors.New("unexpected end of input")
		off = len(r.data)
	}
	return Record{Line: r.lineAt(off), Err: err}, nil
}

// lineAt returns the line of offset off. Offsets only grow, so newlines
// are counted once.
func (r *Reader) lineAt(off int) int {
	off = min(off, len(r.data))
	if off < r.countedOff {
		r.countedOff, r.line = 0, 0
	}
	r.line += bytes.Count(r.data[r.countedOff:off], []byte("\n"))
	r.countedOff = off
	return r.line + 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}
