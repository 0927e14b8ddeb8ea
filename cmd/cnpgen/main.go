// Command cnpgen turns observed Hubble flows into least-privilege
// CiliumNetworkPolicies.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
