// kstatus-check: for each Kubernetes object (JSON, one per file) in the directory given, print
// one JSON line {"file", "kstatus", "flux"}: the status sigs.k8s.io/cli-utils' kstatus computes
// (what Flux and `kubectl wait`-style tools read), and which of Flux's healthCheckExprs
// (deploy/flux/health-check-exprs.yaml, evaluated with cel-go as Flux does, the object as
// `self`) hold for its kind: "failed", "current", "inProgress", comma-separated.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type healthCheck struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Failed     string `json:"failed"`
	Current    string `json:"current"`
	InProgress string `json:"inProgress"`
}

func evaluate(expr string, obj map[string]interface{}) (bool, error) {
	env, err := cel.NewEnv(cel.Variable("self", cel.DynType))
	if err != nil {
		return false, err
	}
	ast, issues := env.Compile(expr)
	if issues != nil && issues.Err() != nil {
		return false, issues.Err()
	}
	program, err := env.Program(ast)
	if err != nil {
		return false, err
	}
	out, _, err := program.Eval(map[string]interface{}{"self": obj})
	if err != nil {
		return false, err
	}
	value, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("%q is not a boolean", expr)
	}
	return value, nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kstatus-check HEALTH_CHECK_EXPRS.yaml DIR")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	check(err)
	var checks []healthCheck
	check(yaml.Unmarshal(raw, &checks))
	files, err := filepath.Glob(filepath.Join(os.Args[2], "*.json"))
	check(err)
	sort.Strings(files)
	for _, file := range files {
		data, err := os.ReadFile(file)
		check(err)
		// Kubernetes' own JSON decoding: integers stay int64, as kstatus and CEL expect.
		var object unstructured.Unstructured
		check(object.UnmarshalJSON(data))
		obj := object.Object
		result, err := status.Compute(&object)
		check(err)
		var held []string
		for _, c := range checks {
			if c.Kind != obj["kind"] || c.APIVersion != obj["apiVersion"] {
				continue
			}
			for _, named := range [][2]string{{"failed", c.Failed}, {"current", c.Current}, {"inProgress", c.InProgress}} {
				ok, err := evaluate(named[1], obj)
				check(err)
				if ok {
					held = append(held, named[0])
				}
			}
		}
		line, err := json.Marshal(map[string]string{
			"file":    filepath.Base(file),
			"kstatus": result.Status.String(),
			"flux":    strings.Join(held, ","),
		})
		check(err)
		fmt.Println(string(line))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus-check:", err)
		os.Exit(1)
	}
}
