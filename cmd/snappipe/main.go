// Command snappipe turns a pipeline YAML file into a Qdrant collection
// snapshot file: validate, plan, apply (resumable), status.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
