package webhook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rida-build/rida/state"
	"github.com/rida-build/rida/urlpolicy"
)

// TestPlanner_CloneURLMustBeOnTheSigningForge: a delivery's clone URL is
// checked against the policy of the forge that signed it before anything
// is fetched or recorded; a foreign one gets a disposition naming why.
func TestPlanner_CloneURLMustBeOnTheSigningForge(t *testing.T) {
	t.Parallel()
	var forgeDir string
	b := setupPlanner(t, func(o *PlannerOptions) {
		forgeDir = filepath.Join(filepath.Dir(o.Store.(*state.Store).Path()), "forge")
		o.CloneURLs = map[string]*urlpolicy.Policy{
			"gitea":  urlpolicy.MustNew("file://" + forgeDir + "/"),
			"github": urlpolicy.MustNew("https://github.com/"),
		}
	})
	mod := b.repo("modules/nodejs", "main")
	c1 := mod.Commit("init", map[string]string{"nodejs.yaml": modulemdYAML("v1", "nodejs")})
	c2 := mod.Commit("v2", map[string]string{"nodejs.yaml": modulemdYAML("v2", "nodejs")})
	zero := strings.Repeat("0", 40)
	outside := filepath.Join(t.TempDir(), "modules", "nodejs")
	if err := os.CopyFS(outside, os.DirFS(filepath.Join(forgeDir, "modules", "nodejs"))); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(forgeDir, outside)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name, forge, cloneURL string
		planned               bool
		why                   []string
	}{
		{"OnItsForge", "gitea", mod.URL(), true, nil},
		{"OnItsForgeUncleaned", "gitea", "file://" + forgeDir + "//modules/x/../nodejs/", true, nil},
		{"AnotherDirectory", "gitea", "file://" + outside, false, []string{"gitea deliveries clone from file://" + forgeDir + "/", "under none of the allowed prefixes"}},
		{"TraversalOut", "gitea", "file://" + forgeDir + "/" + rel, false, []string{"under none"}},
		{"HostPrefixTrick", "github", "https://github.com.evil.example/modules/nodejs.git", false, []string{"github deliveries clone from https://github.com/"}},
		{"Credentials", "github", "https://x:s3cret@github.com/modules/nodejs.git", false, []string{"credentials in URLs are refused"}},
		{"ForgeWithoutHosts", "gitlab", mod.URL(), false, []string{`forge "gitlab" has no allowed hosts`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, after := zero, c1
			if i == 1 {
				before, after = c1, c2 // not a redelivery of the first
			}
			id, err := b.store.RecordDelivery(b.ctx, &state.Delivery{
				Forge: tc.forge, Event: "push", DeliveryGUID: fmt.Sprintf("clone-%d-%d", i, time.Now().UnixNano()),
				Repo: "modules/nodejs", CloneURL: tc.cloneURL, Ref: "refs/heads/main", Before: before, After: after,
			})
			if err != nil {
				t.Fatal(err)
			}
			mirrorsBefore, _ := os.ReadDir(filepath.Join(b.dir, "mirrors"))
			d := b.plan(id)
			if tc.planned {
				if reqs := b.requests(d); len(reqs) != 1 || reqs[0].ModuleRepo != mod.URL() {
					t.Fatalf("disposition %q, requests %+v; want one request for %s (the clone URL cleaned)", d.Disposition.Reason, reqs, mod.URL())
				}
				return
			}
			wantReason(t, d, ReasonCloneURLRefused+": ", tc.why...)
			if strings.Contains(d.Disposition.Reason, "s3cret") {
				t.Errorf("disposition quotes the password: %q", d.Disposition.Reason)
			}
			if mirrorsAfter, _ := os.ReadDir(filepath.Join(b.dir, "mirrors")); len(mirrorsAfter) != len(mirrorsBefore) {
				t.Errorf("a refused clone URL was fetched: mirrors %d → %d", len(mirrorsBefore), len(mirrorsAfter))
			}
		})
	}
}
