// Package diff evaluates policies against observed traffic. So far it
// holds the policy loader that verify and diff read files, directories
// and stdin with; the evaluator builds on it.
package diff
