// Runs every health.lua here over its health_test.yaml cases, and every resource action over
// its action_test.yaml, the way Argo CD does: the object as the global `obj` (a Lua table);
// a health script's returned status and message, an action's discovery table and the object
// an action returns compared with the case's. gopher-lua is the Lua 5.1 VM Argo CD embeds;
// like Argo CD, only the base, table, string and math libraries (and os, for actions) are open.
package argocd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

type healthCase struct {
	HealthStatus struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"healthStatus"`
	InputPath string `json:"inputPath"`
}

type healthTests struct {
	Tests []healthCase `json:"tests"`
}

func toLua(state *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		table := state.NewTable()
		for _, item := range v {
			table.Append(toLua(state, item))
		}
		return table
	case map[string]interface{}:
		table := state.NewTable()
		for key, item := range v {
			table.RawSetString(key, toLua(state, item))
		}
		return table
	}
	panic("unexpected YAML value")
}

// fromLua turns a returned table back into JSON-like Go values (a table with keys 1..n is a
// list, as Argo CD reads it).
func fromLua(value lua.LValue) interface{} {
	switch v := value.(type) {
	case *lua.LTable:
		if n := v.MaxN(); n > 0 {
			items := make([]interface{}, 0, n)
			for i := 1; i <= n; i++ {
				items = append(items, fromLua(v.RawGetInt(i)))
			}
			return items
		}
		fields := map[string]interface{}{}
		v.ForEach(func(key, item lua.LValue) { fields[key.String()] = fromLua(item) })
		return fields
	case lua.LBool:
		return bool(v)
	case lua.LNumber:
		return float64(v)
	case lua.LString:
		return string(v)
	}
	return nil
}

func run(t *testing.T, path string, obj map[string]interface{}, withOs bool) *lua.LTable {
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	t.Cleanup(state.Close)
	libs := map[string]lua.LGFunction{
		lua.BaseLibName:   lua.OpenBase,
		lua.TabLibName:    lua.OpenTable,
		lua.StringLibName: lua.OpenString,
		lua.MathLibName:   lua.OpenMath,
	}
	if withOs {
		libs[lua.OsLibName] = lua.OpenOs
	}
	for name, open := range libs {
		state.Push(state.NewFunction(open))
		state.Push(lua.LString(name))
		state.Call(1, 0)
	}
	state.SetGlobal("obj", toLua(state, obj))
	if err := state.DoString(string(script)); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	result, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("%s returned %v, not a table", path, state.Get(-1))
	}
	return result
}

func health(t *testing.T, path string, obj map[string]interface{}) (string, string) {
	result := run(t, path, obj, false)
	return result.RawGetString("status").String(), result.RawGetString("message").String()
}

func readObject(t *testing.T, path string) map[string]interface{} {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]interface{}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string `json:"inputPath"`
		Result    []struct {
			Name     string `json:"name"`
			Disabled bool   `json:"disabled"`
		} `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

// retrainStamp is what the retrain action writes (no expected file: it is the time).
var retrainStamp = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)

func TestActions(t *testing.T) {
	dirs, _ := filepath.Glob("*/*/actions")
	if len(dirs) == 0 {
		t.Fatal("no actions found")
	}
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, "action_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var cases actionTests
		if err := yaml.Unmarshal(raw, &cases); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases.DiscoveryTests {
			t.Run("discovery/"+c.InputPath, func(t *testing.T) {
				found := run(t, filepath.Join(dir, "discovery.lua"), readObject(t, filepath.Join(dir, c.InputPath)), true)
				for _, want := range c.Result {
					action, ok := found.RawGetString(want.Name).(*lua.LTable)
					if !ok {
						t.Fatalf("no action %s", want.Name)
					}
					if got := lua.LVAsBool(action.RawGetString("disabled")); got != want.Disabled {
						t.Errorf("%s disabled = %v, want %v", want.Name, got, want.Disabled)
					}
				}
			})
		}
		for _, c := range cases.ActionTests {
			t.Run(c.Action+"/"+c.InputPath, func(t *testing.T) {
				input := readObject(t, filepath.Join(dir, c.InputPath))
				got := fromLua(run(t, filepath.Join(dir, c.Action, "action.lua"), readObject(t, filepath.Join(dir, c.InputPath)), true)).(map[string]interface{})
				want := input
				if c.ExpectedOutputPath != "" {
					want = readObject(t, filepath.Join(dir, c.ExpectedOutputPath))
				} else {
					retraining := got["spec"].(map[string]interface{})["retraining"].(map[string]interface{})
					stamp, _ := retraining["run"].(string)
					if !retrainStamp.MatchString(stamp) {
						t.Fatalf("spec.retraining.run = %q, not a time stamp", stamp)
					}
					delete(retraining, "run")
				}
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(want)
				var a, b interface{}
				_ = json.Unmarshal(gotJSON, &a)
				_ = json.Unmarshal(wantJSON, &b)
				if !reflect.DeepEqual(a, b) {
					t.Errorf("got %s\nwant %s", gotJSON, wantJSON)
				}
			})
		}
	}
}

func TestHealth(t *testing.T) {
	scripts, err := filepath.Glob("*/*/health.lua")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no health.lua found: %v", err)
	}
	for _, path := range scripts {
		dir := filepath.Dir(path)
		raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var cases healthTests
		if err := yaml.Unmarshal(raw, &cases); err != nil {
			t.Fatal(err)
		}
		if len(cases.Tests) == 0 {
			t.Fatalf("%s: no cases", dir)
		}
		for _, c := range cases.Tests {
			t.Run(filepath.Join(dir, c.InputPath), func(t *testing.T) {
				obj := readObject(t, filepath.Join(dir, c.InputPath))
				status, message := health(t, path, obj)
				if status != c.HealthStatus.Status || message != c.HealthStatus.Message {
					t.Errorf("got (%s, %q), want (%s, %q)", status, message,
						c.HealthStatus.Status, c.HealthStatus.Message)
				}
			})
		}
	}
}
