package learn

import (
	"slices"
)

func sortedStrings(s []string) bool { return slices.IsSorted(s) }

func sortCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
