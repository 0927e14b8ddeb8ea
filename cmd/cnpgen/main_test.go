package main

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	if os.Getenv("CNPGEN_RUN_MAIN") == "1" {
		// The test binary stands in for cnpgen in subprocess tests.
		main()
	}
	testscript.Main(m, map[string]func(){
		"cnpgen": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the txtar scripts in testdata/script: the CLI as users
// run it, with its files, output and exit codes.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") != "",
		RequireExplicitExec: false,
		Setup: func(env *testscript.Env) error {
			// Real captures, shared with the package tests.
			env.Setenv("FLOWS", mustAbs("../../testdata/flows"))
			env.Setenv("DEMO", mustAbs("../../testdata/demo"))
			env.Setenv("CONFORMANCE", mustAbs("../../testdata/conformance/cilium-l3l4"))
			return nil
		},
	})
}

func mustAbs(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return wd + "/" + p
}
