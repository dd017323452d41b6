// Package alertrules checks Prometheus alerting-rule files the way `promtool check
// rules` does, with Prometheus's own rule-file and PromQL parsers, so a typo in an
// alert fails `make lint` and `make test` instead of failing silently in Prometheus.
// promtool itself cannot be a `go tool` here: current versions need
// github.com/hashicorp/nomad/api, which the module proxy refuses, and v0.310.0's
// promtool does not compile against our client_golang v1.25.
package alertrules

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Path is the repository's rule file, relative to the module root.
const Path = "deploy/prometheus/alerts.yml"

// Severities are the values an alert's severity label may take: they pick the route.
var Severities = []string{"page", "ticket"}

// Load parses and validates path as Prometheus does when it loads rule files
// (strict YAML fields, PromQL expressions, label names, annotation templates), and
// adds this repository's conventions: at least one rule, only alerting rules, unique
// alert names, a severity label from Severities and a summary annotation. The error
// lists every problem found.
func Load(path string) (*rulefmt.RuleGroups, error) {
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, newParser(), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	seen := map[string]bool{}
	count := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			count++
			where := fmt.Sprintf("%s: group %q", path, g.Name)
			if r.Alert == "" {
				errs = append(errs, fmt.Errorf("%s: recording rule %q: this file holds alerts only", where, r.Record))
				continue
			}
			where += fmt.Sprintf(", alert %q", r.Alert)
			if seen[r.Alert] {
				errs = append(errs, fmt.Errorf("%s: alert name used twice", where))
			}
			seen[r.Alert] = true
			if !slices.Contains(Severities, r.Labels["severity"]) {
				errs = append(errs, fmt.Errorf("%s: label severity must be one of %v", where, Severities))
			}
			if r.Annotations["summary"] == "" {
				errs = append(errs, fmt.Errorf("%s: annotation summary is required", where))
			}
			if time.Duration(r.For) < 0 || time.Duration(r.For) > 24*time.Hour {
				errs = append(errs, fmt.Errorf("%s: for must be between 0 and 24h", where))
			}
		}
	}
	if count == 0 {
		errs = append(errs, fmt.Errorf("%s: no rules", path))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return groups, nil
}

// Metrics returns, sorted and once each, the metric names the rules' expressions
// select. A selector without an exact metric name is an error: every alert must name
// what it watches so that it can be checked against what the server exports.
func Metrics(groups *rulefmt.RuleGroups) ([]string, error) {
	p := newParser()
	var names []string
	var errs []error
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				errs = append(errs, fmt.Errorf("alert %q: %w", r.Alert, err))
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				name := vs.Name
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
				if name == "" {
					errs = append(errs, fmt.Errorf("alert %q: selector %s names no metric", r.Alert, vs))
					return nil
				}
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
				return nil
			})
		}
	}
	slices.Sort(names)
	return names, errors.Join(errs...)
}

func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }
