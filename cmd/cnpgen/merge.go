package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cnpgen/cnpgen/learn"
)

func newMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge GRAPH… --graph OUT",
		Short: "Merge graphs learned elsewhere (other nodes, days or clusters)",
		Long: `merge combines graphs: counts add up, time windows widen, and detail is
united. The result does not depend on the order of the inputs. OUT may be
one of the inputs; it is replaced atomically.`,
		Example: `  cnpgen merge node1.json node2.json --graph cluster.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g := learn.NewGraph()
			for _, path := range args {
				in, err := loadGraph(path, false)
				if err != nil {
					return err
				}
				g.Merge(in)
			}
			if err := saveGraph(out, g, cmd.OutOrStdout()); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintln(cmd.ErrOrStderr(), graphLine(g, out))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "graph", "", "write the merged graph here ('-' for stdout)")
	_ = cmd.MarkFlagRequired("graph")
	return cmd
}
