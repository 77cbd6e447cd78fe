package webhook

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/state"
)

// TestParsePush_Fixtures checks the normalised delivery of each forge's
// recorded-shape push payload (testdata/<forge>/push.json, shaped after the
// payloads described in the shared forges reference).
func TestParsePush_Fixtures(t *testing.T) {
	tests := []struct {
		kind    ForgeKind
		event   string
		want    state.Delivery
		commits []string // commit ids
	}{
		{GitHub, "push", state.Delivery{
			Forge: "github", Event: "push", Repo: "modules/nodejs", CloneURL: "https://github.com/modules/nodejs.git",
			Ref: "refs/heads/main", Before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", After: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
			Forced: true, Sender: "alice",
		}, []string{"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}},
		{Gitea, "push", state.Delivery{
			Forge: "gitea", Event: "push", Repo: "rpms/npm", CloneURL: "https://gitea.example/rpms/npm.git",
			Ref: "refs/heads/main", Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			Sender: "bob",
		}, []string{"bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{Forgejo, "push", state.Delivery{
			Forge: "forgejo", Event: "push", Repo: "rpms/npm", CloneURL: "https://forgejo.example/rpms/npm.git",
			Ref: "refs/heads/main", Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a",
			Sender: "bob",
		}, []string{"bffeb74224043ba2feb48d137756c8a9331c449a"}},
		{GitLab, "Push Hook", state.Delivery{
			Forge: "gitlab", Event: "Push Hook", Repo: "modules/perl", CloneURL: "https://gitlab.example/modules/perl.git",
			Ref: "refs/heads/main", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			CheckoutSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Sender: "carol",
		}, []string{"b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			got, err := ParsePush(tt.kind, tt.event, fixture(t, tt.kind, "push.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, c := range got.Commits {
				ids = append(ids, c.ID)
				if c.Message == "" {
					t.Errorf("commit %s has no message", c.ID)
				}
			}
			if !slices.Equal(ids, tt.commits) {
				t.Errorf("commits = %v, want %v", ids, tt.commits)
			}
			got.Commits = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("ParsePush =\n %+v\nwant\n %+v", *got, tt.want)
			}
		})
	}
	d, _ := ParsePush(GitHub, "push", fixture(t, GitHub, "push.json"))
	if !strings.Contains(d.Commits[0].Message, "[skip rebuild]") {
		t.Errorf("commit message trailer lost: %q", d.Commits[0].Message)
	}
}

func TestParsePush_Errors(t *testing.T) {
	tests := []struct {
		name string
		kind ForgeKind
		body string
		want string
	}{
		{"NoRepository", GitHub, `{"ref":"refs/heads/a","before":"` + zeros + `","after":"` + zeros + `"}`, "no repository object"},
		{"NoFullName", Gitea, `{"ref":"refs/heads/a","repository":{"clone_url":"u"}}`, "no repository.full_name"},
		{"NoCloneURL", Forgejo, `{"ref":"refs/heads/a","repository":{"full_name":"a/b"}}`, "no repository.clone_url"},
		{"NoProject", GitLab, `{"ref":"refs/heads/a"}`, "no project object"},
		{"NoGitHTTPURL", GitLab, `{"ref":"x","project":{"path_with_namespace":"a/b"}}`, "no project.git_http_url"},
		{"NoRef", GitHub, `{"repository":{"full_name":"a/b","clone_url":"u"}}`, "no ref"},
		{"BadBefore", GitHub, `{"ref":"r","before":"xyz","after":"` + zeros + `","repository":{"full_name":"a/b","clone_url":"u"}}`, "field before is not a commit id"},
		{"BadCheckoutSHA", GitLab, `{"ref":"r","before":"` + zeros + `","after":"` + zeros + `","checkout_sha":"nope","project":{"path_with_namespace":"a/b","git_http_url":"u"}}`, "checkout_sha"},
		{"WrongType", GitHub, `{"forced":"yes"}`, "payload field forced is a JSON string, want boolean"},
		{"NotObject", GitLab, `[1,2]`, "is a JSON array, want object"},
		{"Syntax", Gitea, `{"ref":`, "body is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePush(tt.kind, "push", []byte(tt.body))
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalid || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("err = %v, want CodeInvalid containing %q", err, tt.want)
			}
		})
	}
}

const zeros = "0000000000000000000000000000000000000000"

// FuzzParsePush feeds arbitrary bodies to every forge's parser: it must never
// panic, must fail only with a CodeInvalid *Error, and on success return a
// delivery with a repo, a clone URL, a ref and commit ids for before/after.
func FuzzParsePush(f *testing.F) {
	for _, k := range ForgeKinds() {
		b, err := os.ReadFile(filepath.Join("testdata", string(k), "push.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(slices.Index(ForgeKinds(), k)), b)
	}
	f.Add(uint8(0), []byte(`{"ref":"refs/heads/a","before":"`+zeros+`","after":"`+zeros+`","repository":{"full_name":"a","clone_url":"b"}}`))
	f.Add(uint8(3), []byte(`{"project":null}`))
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kinds := ForgeKinds()
		kind := kinds[int(k)%len(kinds)]
		d, err := ParsePush(kind, "push", body)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalid || e.Message == "" {
				t.Fatalf("error %v is not a CodeInvalid *Error", err)
			}
			return
		}
		if d.Repo == "" || d.CloneURL == "" || d.Ref == "" || !isCommitID(d.Before) || !isCommitID(d.After) || d.Forge != string(kind) {
			t.Fatalf("accepted an incomplete delivery: %+v", d)
		}
	})
}

// A push of 60 000 commits keeps the newest 100 (and counts the rest); a
// huge commit message is cut.
func TestParsePush_CommitsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"ref":"refs/heads/a","before":"` + zeros + `","after":"` + strings.Repeat("a", 40) + `","repository":{"full_name":"a/b","clone_url":"u"},"commits":[`)
	for i := range 60000 {
		if i > 0 {
			b.WriteString(",")
		}
		msg := "m"
		if i == 59999 {
			msg = strings.Repeat("x", 100000)
		}
		fmt.Fprintf(&b, `{"id":"%040x","message":%q}`, i, msg)
	}
	b.WriteString("]}")
	d, err := ParsePush(GitHub, "push", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Commits) != MaxStoredCommits || d.CommitsOmitted != 60000-MaxStoredCommits {
		t.Fatalf("kept %d commits, omitted %d", len(d.Commits), d.CommitsOmitted)
	}
	if last := d.Commits[len(d.Commits)-1]; last.ID != fmt.Sprintf("%040x", 59999) || len(last.Message) > 4200 {
		t.Errorf("newest commit %s, message %d bytes", last.ID, len(last.Message))
	}
}
