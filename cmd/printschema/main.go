// Command printschema prints the API's schema in GraphQL SDL on standard output,
// as clients/schema.graphql holds it: go run ./cmd/printschema > clients/schema.graphql
package main

import (
	"fmt"
	"os"

	"github.com/scoville/scoville/clients"
)

func main() {
	if err := clients.PrintSchema(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "printschema:", err)
		os.Exit(1)
	}
}
