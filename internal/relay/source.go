package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cnpgen/cnpgen/learn"
)

// SourceOptions say which flows to ask for and how to keep the stream up.
type SourceOptions struct {
	// Filter's FlowFilters and time window are sent to the server.
	Filter *learn.Filter
	// MaxFlows ends the source after this many flows (0: no limit).
	MaxFlows uint64
	// MinBackoff and MaxBackoff bound the wait between reconnects
	// (defaults 250ms and 30s); each wait is drawn at random from up to
	// twice the last one.
	MinBackoff, MaxBackoff time.Duration
	// OnReconnect, if set, is told about every broken stream before the
	// source waits and reconnects.
	OnReconnect func(err error, wait time.Duration)
}

// learningEvents are the event types learning uses: drops, traces, policy
// verdicts and L7 records.
var learningEvents = []*flowpb.EventTypeFilter{{Type: 1}, {Type: 4}, {Type: 5}, {Type: 129}}

// Source streams flows from the server. It implements learn.Source.
type Source struct {
	c      *Client
	o      SourceOptions
	req    *observer.GetFlowsRequest
	recv   chan recvResult // responses of the open stream, nil if none
	cancel context.CancelFunc
	rng    *rand.Rand
	wait   time.Duration

	n       int64  // messages received
	flows   uint64 // flows handed out
	resumed bool
	// last is the time of the newest flow handed out, and atLast the
	// flows handed out at exactly that time: after a reconnect the server
	// resends from there, and those are skipped.
	last   time.Time
	atLast map[[32]byte]struct{}

	Reconnects int
}

type recvResult struct {
	resp *observer.GetFlowsResponse
	err  error
}

// idleAfter is how long Next waits for a response before it returns an
// idle event.
const idleAfter = time.Second

// Source returns a source of the server's flows.
func (c *Client) Source(o SourceOptions) *Source {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	req := &observer.GetFlowsRequest{Follow: true}
	if f := o.Filter; f != nil {
		for _, ff := range f.Whitelist() {
			req.Whitelist = append(req.Whitelist, proto.CloneOf(ff))
		}
		for _, ff := range f.Blacklist() {
			req.Blacklist = append(req.Blacklist, proto.CloneOf(ff))
		}
		if !f.Since().IsZero() {
			req.Since = timestamppb.New(f.Since())
		}
		if !f.Until().IsZero() {
			req.Until = timestamppb.New(f.Until())
			req.Follow = false
		}
	}
	if len(req.Whitelist) == 0 {
		req.Whitelist = []*flowpb.FlowFilter{{}}
	}
	for _, ff := range req.Whitelist {
		ff.EventType = learningEvents
	}
	if req.Since == nil && !req.Follow {
		// hubble: without since, until only makes sense with all flows.
		req.Number = ^uint64(0)
	}
	return &Source{c: c, o: o, req: req, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)), atLast: map[[32]byte]struct{}{}}
}

// Request returns the GetFlows request the source sends first.
func (s *Source) Request() *observer.GetFlowsRequest { return s.req }

// Name names the source in positions.
func (s *Source) Name() string { return "relay " + s.c.Server() }

// Close ends the stream.
func (s *Source) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	return nil
}

// Next returns the next event. A broken stream is reopened from the time
// of the last flow; Next returns an error only when ctx is done or the
// server refuses the request itself.
func (s *Source) Next(ctx context.Context) (learn.Event, error) {
	for {
		if s.o.MaxFlows > 0 && s.flows >= s.o.MaxFlows {
			return learn.Event{}, io.EOF
		}
		if s.recv == nil {
			if err := s.open(ctx); err != nil {
				return learn.Event{}, err
			}
			continue
		}
		var res recvResult
		idle := time.NewTimer(idleAfter)
		select {
		case res = <-s.recv:
			idle.Stop()
		case <-idle.C:
			return learn.Event{Kind: learn.EventIdle}, nil
		case <-ctx.Done():
			idle.Stop()
			s.cancel()
			s.recv = nil
			return learn.Event{}, ctx.Err()
		}
		resp, err := res.resp, res.err
		if err != nil {
			s.cancel()
			s.recv = nil
			if ctx.Err() != nil {
				return learn.Event{}, ctx.Err()
			}
			if errors.Is(err, io.EOF) && !s.req.Follow {
				return learn.Event{}, io.EOF // the window is done
			}
			if fatal(err) {
				return learn.Event{}, fmt.Errorf("%s: %s", s.Name(), cleanStatus(err))
			}
			if err := s.backoff(ctx, err); err != nil {
				return learn.Event{}, err
			}
			continue
		}
		s.wait = 0
		s.n++
		if ev, ok := s.event(resp); ok {
			return ev, nil
		}
	}
}

// fatal reports errors that reconnecting cannot fix.
func fatal(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated:
		return true
	}
	return false
}

func (s *Source) open(ctx context.Context) error {
	req := s.req
	if s.resumed {
		req = proto.CloneOf(s.req)
		req.Since = timestamppb.New(s.last)
		req.Number = 0
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := s.c.obs.GetFlows(sctx, req)
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fatal(err) {
			return fmt.Errorf("%s: %s", s.Name(), cleanStatus(err))
		}
		return s.backoff(ctx, err)
	}
	ch := make(chan recvResult, 64)
	go func() {
		for {
			resp, err := stream.Recv()
			select {
			case ch <- recvResult{resp, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	s.recv, s.cancel = ch, cancel
	return nil
}

func (s *Source) backoff(ctx context.Context, cause error) error {
	s.wait = min(max(2*s.wait, s.o.MinBackoff), s.o.MaxBackoff)
	d := s.o.MinBackoff/2 + time.Duration(s.rng.Int64N(int64(s.wait)))
	if s.o.OnReconnect != nil {
		s.o.OnReconnect(cause, d)
	}
	s.Reconnects++
	if !s.last.IsZero() {
		s.resumed = true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// event turns a response into an event; ok is false for a flow resent
// after a reconnect.
func (s *Source) event(resp *observer.GetFlowsResponse) (learn.Event, bool) {
	pos := learn.Position{Source: s.Name(), Offset: s.n}
	switch r := resp.GetResponseTypes().(type) {
	case *observer.GetFlowsResponse_LostEvents:
		return learn.Event{Pos: pos, Kind: learn.EventLost, Lost: r.LostEvents.GetNumEventsLost()}, true
	case *observer.GetFlowsResponse_NodeStatus:
		switch r.NodeStatus.GetStateChange() {
		case relaypb.NodeState_NODE_ERROR, relaypb.NodeState_NODE_UNAVAILABLE:
			return learn.Event{Pos: pos, Kind: learn.EventOther, Other: learn.OtherNodeError}, true
		}
		return learn.Event{Pos: pos, Kind: learn.EventOther, Other: "node_status"}, true
	case *observer.GetFlowsResponse_Flow:
		f := r.Flow
		t := f.GetTime().AsTime()
		if f.GetTime() == nil {
			t = resp.GetTime().AsTime()
		}
		if s.resumed && t.Before(s.last) {
			return learn.Event{}, false
		}
		key := flowKey(f)
		if t.Equal(s.last) {
			if _, dup := s.atLast[key]; dup {
				return learn.Event{}, false
			}
		} else if t.After(s.last) {
			s.last = t
			clear(s.atLast)
		}
		s.atLast[key] = struct{}{}
		s.flows++
		fl, err := learn.FromProto(f)
		if err != nil {
			return learn.Event{Pos: pos, Kind: learn.EventMalformed, Err: &learn.RecordError{Pos: pos, Err: err}}, true
		}
		if fl.Time.IsZero() {
			fl.Time = t
		}
		if fl.NodeName == "" {
			fl.NodeName = resp.GetNodeName()
		}
		return learn.Event{Pos: pos, Kind: learn.EventFlow, Flow: fl}, true
	}
	return learn.Event{Pos: pos, Kind: learn.EventOther, Other: "unknown"}, true
}

// flowKey identifies a flow event: its uuid, or all of it for Hubble
// versions before uuids.
func flowKey(f *flowpb.Flow) [32]byte {
	if id := f.GetUuid(); id != "" {
		return sha256.Sum256([]byte(id))
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	return sha256.Sum256(b)
}
