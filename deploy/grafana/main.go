// dashboard-check: validate Grafana dashboards (JSON files given as arguments) against the
// dashboard schema as Grafana's own Foundation SDK encodes it: a strict decode (an unknown or
// mistyped field is an error; panel options and field config decoded by their panel plugin's
// schema, Prometheus queries by the Prometheus data source's), then the schema's constraints.
// It also requires what Modelyard's dashboards promise: every panel but a row queries
// Prometheus, and every query has an expression. Prints one JSON line per query found:
// {"panel", "refId", "expr"}, which the e2e tier runs against a real Prometheus.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

type query struct {
	Panel string `json:"panel"`
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// failed: the SDK may return an empty cog.BuildErrors (a typed nil) for "no errors".
func failed(err error) bool {
	var errs cog.BuildErrors
	if errors.As(err, &errs) {
		return len(errs) > 0
	}
	return err != nil
}

func check(path string) ([]query, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var board dashboard.Dashboard
	if err := board.UnmarshalJSONStrict(raw); failed(err) {
		return nil, fmt.Errorf("%s: not a valid dashboard: %w", path, err)
	}
	if err := board.Validate(); failed(err) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// v0.0.22 drops the panels and queries it decoded (each strict decoder returns the typed
	// nil above, and its caller returns early on it), so they are decoded again here.
	var raws struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, err
	}
	var found []query
	for i, item := range raws.Panels {
		var kind struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(item, &kind); err != nil {
			return nil, err
		}
		if kind.Type == "row" { // rows here are expanded: their panels are in this list
			continue
		}
		var panel dashboard.Panel
		if err := panel.UnmarshalJSONStrict(item); failed(err) {
			return nil, fmt.Errorf("%s: panels[%d]: %w", path, i, err)
		}
		if err := panel.Validate(); failed(err) {
			return nil, fmt.Errorf("%s: panels[%d]: %w", path, i, err)
		}
		title := ""
		if panel.Title != nil {
			title = *panel.Title
		}
		var targets struct {
			Targets []json.RawMessage `json:"targets"`
		}
		if err := json.Unmarshal(item, &targets); err != nil {
			return nil, err
		}
		if len(targets.Targets) == 0 {
			return nil, fmt.Errorf("%s: panel %q has no query", path, title)
		}
		for j, target := range targets.Targets { // decoded again for the same reason
			var dq prometheus.Dataquery
			if err := dq.UnmarshalJSONStrict(target); failed(err) {
				return nil, fmt.Errorf("%s: panel %q target %d: not a Prometheus query: %w", path, title, j, err)
			}
			if dq.Expr == "" {
				return nil, fmt.Errorf("%s: panel %q target %d has no expr", path, title, j)
			}
			ref := ""
			if dq.RefId != nil {
				ref = *dq.RefId
			}
			found = append(found, query{Panel: title, RefID: ref, Expr: dq.Expr})
		}
	}
	return found, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check DASHBOARD.json...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	out := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[1:] {
		queries, err := check(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, q := range queries {
			if err := out.Encode(q); err != nil {
				panic(err)
			}
		}
	}
}
