// Package relay learns live from Hubble Relay (or a single Hubble server)
// over gRPC: it connects with the hubble CLI's options and meaning, follows
// Observer.GetFlows with server-side filters, and reconnects after a
// broken stream, resuming where it left off without counting a flow twice.
// [Source] implements learn.Source.
package relay
