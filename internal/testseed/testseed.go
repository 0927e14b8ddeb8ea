// Package testseed gives randomised tests a seed that a failure can be
// replayed with.
package testseed

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Seed returns TEST_SEED if set, else the current time, and logs it so
// that a failing run can be replayed with TEST_SEED=<seed>.
func Seed(tb testing.TB) uint64 {
	tb.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("TEST_SEED: %v", err)
		}
		seed = v
	}
	tb.Logf("TEST_SEED=%d", seed)
	return seed
}
