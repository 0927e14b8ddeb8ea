package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func cnpgenVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Exit codes, as GNU diff: 0 clean, 1 findings, 2 usage or input error.
const (
	exitOK       = 0
	exitFindings = 1
	exitError    = 2
	exitSignal   = 130
)

// exitCodeError carries an exit code other than exitError.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "cnpgen",
		Short: "Turn observed Hubble flows into least-privilege CiliumNetworkPolicies",
		Long: `cnpgen learns who talks to whom from Hubble flows, keeps it as a mergeable
graph, and turns that graph into CiliumNetworkPolicies that allow exactly what
was observed.`,
		Version:       cnpgenVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newLearnCmd(), newMergeCmd(), newSynthCmd(), newVerifyCmd(), newDiffCmd(), newDemoFlowsCmd())
	return root
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "cnpgen: %v\n", err)
	if ec, ok := errors.AsType[*exitCodeError](err); ok {
		return ec.code
	}
	return exitError
}
