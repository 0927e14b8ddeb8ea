// Package learn turns Hubble flows into a persistent, mergeable graph of
// observed connections.
//
// It owns the lean, normalised [Flow] that every flow source produces, the
// [Source] interface those sources implement, the hubble-compatible [Filter],
// the [Learner] that maps connection-initiating flows to edges, and the
// [Graph] value with its versioned on-disk format. Nothing here knows about
// policies.
package learn
