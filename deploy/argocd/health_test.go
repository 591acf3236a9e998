// Runs every health.lua here over its health_test.yaml cases, the way Argo CD does: the
// object as the global `obj` (a Lua table), the script's returned table's status and message
// compared with the case's. gopher-lua is the Lua 5.1 VM Argo CD embeds; like Argo CD, only
// the base, table, string and math libraries are open.
package argocd

import (
	"os"
	"path/filepath"
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

func health(t *testing.T, script string, obj map[string]interface{}) (string, string) {
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer state.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.BaseLibName:   lua.OpenBase,
		lua.TabLibName:    lua.OpenTable,
		lua.StringLibName: lua.OpenString,
		lua.MathLibName:   lua.OpenMath,
	} {
		state.Push(state.NewFunction(open))
		state.Push(lua.LString(name))
		state.Call(1, 0)
	}
	state.SetGlobal("obj", toLua(state, obj))
	if err := state.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	result, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v, not a table", state.Get(-1))
	}
	return result.RawGetString("status").String(), result.RawGetString("message").String()
}

func TestHealth(t *testing.T) {
	scripts, err := filepath.Glob("*/*/health.lua")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no health.lua found: %v", err)
	}
	for _, path := range scripts {
		dir := filepath.Dir(path)
		script, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
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
				input, err := os.ReadFile(filepath.Join(dir, c.InputPath))
				if err != nil {
					t.Fatal(err)
				}
				var obj map[string]interface{}
				if err := yaml.Unmarshal(input, &obj); err != nil {
					t.Fatal(err)
				}
				status, message := health(t, string(script), obj)
				if status != c.HealthStatus.Status || message != c.HealthStatus.Message {
					t.Errorf("got (%s, %q), want (%s, %q)", status, message,
						c.HealthStatus.Status, c.HealthStatus.Message)
				}
			})
		}
	}
}
