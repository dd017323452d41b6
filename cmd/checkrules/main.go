// Command checkrules validates Prometheus alerting-rule files like `promtool check
// rules` (see package alertrules); `make lint` runs it on the repository's rules.
//
//	go run ./cmd/checkrules [file ...]   (default: deploy/prometheus/alerts.yml)
package main

import (
	"fmt"
	"os"

	"github.com/scoville/scoville/alertrules"
)

func main() {
	files := os.Args[1:]
	if len(files) == 0 {
		files = []string{alertrules.Path}
	}
	failed := false
	for _, f := range files {
		groups, err := alertrules.Load(f)
		if err == nil {
			_, err = alertrules.Metrics(groups)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "checkrules: %s: FAILED:\n%v\n", f, err)
			failed = true
			continue
		}
		n := 0
		for _, g := range groups.Groups {
			n += len(g.Rules)
		}
		fmt.Printf("checkrules: %s: SUCCESS: %d rules found\n", f, n)
	}
	if failed {
		os.Exit(1)
	}
}
