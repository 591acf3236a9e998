//go:build tools

// The commands hack/prometheus-binaries.sh builds; the build tag keeps this package out of
// every build, and the imports keep `go mod tidy` from dropping the modules they need.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
