// Package flowgen writes realistic Hubble flows for a demo microservice app,
// deterministically: the same options give the same bytes. It feeds `make
// demo`, the benchmarks, and tests that check learning recovers exactly
// the app's topology ([Topology]).
package flowgen
