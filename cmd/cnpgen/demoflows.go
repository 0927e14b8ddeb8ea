package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cnpgen/cnpgen/internal/atomicfile"
	"github.com/cnpgen/cnpgen/internal/flowgen"
)

func newDemoFlowsCmd() *cobra.Command {
	var (
		o   flowgen.Options
		out string
	)
	cmd := &cobra.Command{
		Use:   "demo-flows [-o FILE]",
		Short: "Write realistic Hubble flows of a demo microservice app",
		Long: `demo-flows writes 'hubble observe -o jsonpb' lines for a demo shop app across
several namespaces and nodes: both observation points, replies, DNS through
kube-dns, HTTP, kube-apiserver and external calls, host health checks and
policy drops. The same seed and size always give the same bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "-" {
				w := bufio.NewWriter(cmd.OutOrStdout())
				if _, err := flowgen.Write(w, o); err != nil {
					return err
				}
				return w.Flush()
			}
			var st flowgen.Stats
			err := atomicfile.WriteFunc(out, 0o644, func(w io.Writer) (err error) {
				st, err = flowgen.Write(w, o)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d flows and %d lost-events records to %s\n", st.Flows, st.LostEvents, out)
			return nil
		},
	}
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "random seed")
	cmd.Flags().IntVar(&o.Flows, "flows", 5000, "number of flows")
	cmd.Flags().StringVarP(&out, "output", "o", "-", "output file ('-' for stdout)")
	return cmd
}
