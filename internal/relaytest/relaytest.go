// Package relaytest runs a real Hubble Observer gRPC server on loopback
// that streams recorded flows, for tests of the relay client and the CLI.
// It can cut streams, send lost events and garbage, stall, and require
// TLS or mutual TLS.
package relaytest

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cnpgen/cnpgen/learn"
)

// Server is an Observer server over recorded responses.
type Server struct {
	observer.UnimplementedObserverServer

	// Responses are streamed in order; flows are filtered by the request.
	Responses []*observer.GetFlowsResponse
	// Generate, if set, is called for responses after Responses, until
	// it returns nil: for streams too large to hold.
	Generate func(i int) *observer.GetFlowsResponse
	// Cuts lists, per connection, after how many messages that stream
	// breaks with Unavailable; connections past the list run to the end.
	Cuts []int
	// StallAfter, if positive, makes streams stop sending after that many
	// messages without ending.
	StallAfter int
	// Authorization, if set, is the authorization header every call must
	// carry ("Basic …").
	Authorization string

	mu       sync.Mutex
	conns    int
	requests []*observer.GetFlowsRequest
}

// Requests returns the GetFlows requests received so far.
func (s *Server) Requests() []*observer.GetFlowsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Start serves s on a free loopback port until the test ends and returns
// its address. With tlsConfig the server speaks TLS.
func Start(tb testing.TB, s *Server, tlsConfig *tls.Config) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return Serve(tb, lis, s, tlsConfig)
}

// Serve serves s on lis until the test ends and returns its address.
func Serve(tb testing.TB, lis net.Listener, s *Server, tlsConfig *tls.Config) string {
	tb.Helper()
	var opts []grpc.ServerOption
	if tlsConfig != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConfig)))
	}
	auth := func(ctx context.Context) error {
		if s.Authorization == "" {
			return nil
		}
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != s.Authorization {
			return status.Error(codes.Unauthenticated, "relaytest: bad credentials")
		}
		return nil
	}
	opts = append(opts,
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := auth(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := auth(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	gs := grpc.NewServer(opts...)
	observer.RegisterObserverServer(gs, s)
	go gs.Serve(lis)
	tb.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// ServerStatus reports the number of recorded flows.
func (s *Server) ServerStatus(context.Context, *observer.ServerStatusRequest) (*observer.ServerStatusResponse, error) {
	return &observer.ServerStatusResponse{
		NumFlows: uint64(len(s.Responses)), MaxFlows: 4095, SeenFlows: uint64(len(s.Responses)), FlowsRate: 42,
		NumConnectedNodes: wrapperspb.UInt32(3), NumUnavailableNodes: wrapperspb.UInt32(0),
	}, nil
}

// GetNodes reports three nodes.
func (s *Server) GetNodes(context.Context, *observer.GetNodesRequest) (*observer.GetNodesResponse, error) {
	return &observer.GetNodesResponse{Nodes: []*observer.Node{{Name: "kind-worker"}, {Name: "kind-worker2"}, {Name: "kind-worker3"}}}, nil
}

// GetFlows streams the responses that match the request.
func (s *Server) GetFlows(req *observer.GetFlowsRequest, stream observer.Observer_GetFlowsServer) error {
	s.mu.Lock()
	conn := s.conns
	s.conns++
	s.requests = append(s.requests, proto.CloneOf(req))
	s.mu.Unlock()
	cut := -1
	if conn < len(s.Cuts) {
		cut = s.Cuts[conn]
	}
	match, err := matcher(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	sent := 0
	for i := 0; ; i++ {
		var r *observer.GetFlowsResponse
		switch {
		case i < len(s.Responses):
			r = s.Responses[i]
		case s.Generate != nil:
			r = s.Generate(i - len(s.Responses))
		}
		if r == nil {
			break
		}
		if f := r.GetFlow(); f != nil {
			t := f.GetTime().AsTime()
			if req.GetSince() != nil && t.Before(req.GetSince().AsTime()) {
				continue
			}
			if req.GetUntil() != nil && t.After(req.GetUntil().AsTime()) {
				continue
			}
			if !match(f) {
				continue
			}
		}
		if sent == cut {
			return status.Error(codes.Unavailable, "relaytest: stream cut")
		}
		if s.StallAfter > 0 && sent == s.StallAfter {
			<-stream.Context().Done()
			return stream.Context().Err()
		}
		if err := stream.Send(r); err != nil {
			return err
		}
		sent++
	}
	if req.GetFollow() {
		<-stream.Context().Done()
		return nil
	}
	return nil
}

// matcher applies the request's filters as Hubble does, with the event
// type filter, which learn.Filter does not evaluate, checked here.
func matcher(req *observer.GetFlowsRequest) (func(*flowpb.Flow) bool, error) {
	strip := func(in []*flowpb.FlowFilter) ([]*flowpb.FlowFilter, [][]*flowpb.EventTypeFilter) {
		var out []*flowpb.FlowFilter
		var types [][]*flowpb.EventTypeFilter
		for _, ff := range in {
			c := proto.CloneOf(ff)
			types = append(types, c.EventType)
			c.EventType = nil
			out = append(out, c)
		}
		return out, types
	}
	white, whiteTypes := strip(req.GetWhitelist())
	black, _ := strip(req.GetBlacklist())
	var filters []*learn.Filter
	for _, w := range white {
		f, err := learn.CompileFilter([]*flowpb.FlowFilter{w}, nil, time.Time{}, time.Time{})
		if err != nil {
			return nil, err
		}
		filters = append(filters, f)
	}
	blackF, err := learn.CompileFilter(nil, black, time.Time{}, time.Time{})
	if err != nil {
		return nil, err
	}
	return func(f *flowpb.Flow) bool {
		fl, err := learn.FromProto(f)
		if err != nil {
			return true // garbage goes through, for the client to reject
		}
		if !blackF.Match(fl) {
			return false
		}
		if len(filters) == 0 {
			return true
		}
		for i, wf := range filters {
			typeOK := len(whiteTypes[i]) == 0 || slices.ContainsFunc(whiteTypes[i], func(t *flowpb.EventTypeFilter) bool {
				return t.GetType() == f.GetEventType().GetType()
			})
			if typeOK && wf.Match(fl) {
				return true
			}
		}
		return false
	}, nil
}
