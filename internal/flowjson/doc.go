// Package flowjson reads Hubble's JSON outputs: `hubble observe -o json` and
// `-o jsonpb` lines, bare legacy flow lines, Hubble exporter logs (plain or
// gzip-compressed) and JSON arrays of any of those.
//
// [Reader] splits a stream into records and remembers where each started;
// [Decode] turns one record into protobuf messages with protojson, the
// reference decoder, discarding fields newer Cilium versions added.
package flowjson
