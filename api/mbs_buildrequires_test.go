package api_test

import (
	"encoding/json"
	"testing"

	"github.com/rida-build/rida/state"
)

// xmdModulemd is an enriched modulemd as the runner stores it: platform
// and lower in xmd.mbs.buildrequires, lower's version unquoted (YAML
// reads it as a number).
const xmdModulemd = `---
document: modulemd
version: 2
data:
  name: upper
  stream: stable
  version: 9020260301120000
  context: c0ffee01
  summary: upper
  description: upper
  license:
    module: [MIT]
  xmd:
    mbs:
      mse: TRUE
      commit: 0123456789abcdef0123456789abcdef01234567
      buildrequires:
        platform:
          stream: el9
          filtered_rpms: []
        lower:
          stream: stable
          version: 9020260301110000
          context: "0000abcd"
          ref: fedcba9876543210fedcba9876543210fedcba98
          koji_tag: module-lower-stable-9020260301110000-0000abcd
          filtered_rpms: [liblow-devel-0:1.0-1.x86_64]
  dependencies:
    - buildrequires:
        platform: [el9]
        lower: [stable]
...
`

// TestServer_BuildRequires: MBS's "buildrequires" is the build's
// xmd.mbs.buildrequires, each entry with every field MBS writes (version a
// string); without one in the modulemd the recorded BuildRequires stand in.
func TestServer_BuildRequires(t *testing.T) {
	b := setup(t)
	b.putBuild(state.ModuleBuild{Name: "upper", Stream: "stable", Version: 9020260301120000, Context: "c0ffee01", Modulemd: xmdModulemd,
		Platform: "el9", BuildRequires: []state.BuiltAgainst{{Name: "lower", Stream: "stable", Version: 1, Context: "ignored", BuildID: 7, Direct: true}}},
		state.ModuleStateReady)
	b.putBuild(state.ModuleBuild{Name: "mid", Stream: "stable", Version: 42, Context: "abcd0001", Platform: "el9",
		BuildRequires: []state.BuiltAgainst{{Name: "lower", Stream: "stable", Version: 41, Context: "abcd0000", BuildID: 1, Direct: true},
			{Name: "base", Stream: "1", Version: 5, Context: "bbbb0000", BuildID: 3}}},
		state.ModuleStateBuild)
	b.putBuild(state.ModuleBuild{Name: "plain", Stream: "main", Version: 1, Context: "cccc"}, state.ModuleStateWait)

	brOf := func(path string) map[string]any {
		t.Helper()
		r := b.get(path)
		expect(t, r, 200, "")
		br, ok := r.json(t)["buildrequires"].(map[string]any)
		if !ok {
			t.Fatalf("%s: buildrequires %v", path, r.json(t)["buildrequires"])
		}
		return br
	}
	want := func(t *testing.T, got any, want string) {
		t.Helper()
		data, _ := json.Marshal(got)
		if string(data) != want {
			t.Errorf("got  %s\nwant %s", data, want)
		}
	}
	t.Run("from xmd", func(t *testing.T) {
		br := brOf("/module-build-service/2/module-builds/1")
		want(t, br["lower"], `{"context":"0000abcd","filtered_rpms":["liblow-devel-0:1.0-1.x86_64"],"koji_tag":"module-lower-stable-9020260301110000-0000abcd","ref":"fedcba9876543210fedcba9876543210fedcba98","stream":"stable","version":"9020260301110000"}`)
		want(t, br["platform"], `{"context":null,"filtered_rpms":[],"koji_tag":null,"ref":null,"stream":"el9","version":null}`)
		if len(br) != 2 {
			t.Errorf("entries %v", br)
		}
	})
	t.Run("from the recorded builds", func(t *testing.T) {
		br := brOf("/module-build-service/1/module-builds/2?verbose=true")
		want(t, br["lower"], `{"context":"abcd0000","filtered_rpms":[],"koji_tag":"module-lower-stable-41-abcd0000","ref":null,"stream":"stable","version":"41"}`)
		want(t, br["base"], `{"context":"bbbb0000","filtered_rpms":[],"koji_tag":"module-base-1-5-bbbb0000","ref":null,"stream":"1","version":"5"}`)
		want(t, br["platform"], `{"context":null,"filtered_rpms":[],"koji_tag":null,"ref":null,"stream":"el9","version":null}`)
	})
	t.Run("none", func(t *testing.T) {
		want(t, brOf("/module-build-service/2/module-builds/3"), `{}`)
	})
	t.Run("list and short", func(t *testing.T) {
		r := b.get("/module-build-service/2/module-builds/?name=upper")
		items := r.json(t)["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["buildrequires"].(map[string]any)["lower"] == nil {
			t.Errorf("list items %v", items)
		}
		if _, ok := b.get("/module-build-service/2/module-builds/1?short=true").json(t)["buildrequires"]; ok {
			t.Errorf("short JSON has buildrequires")
		}
	})
}
