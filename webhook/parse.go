package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rida-build/rida/state"
)

// ForgeKind names a webhook dialect; it is also the last path element of the
// receiver's URL (/webhooks/<kind>).
type ForgeKind string

// The supported dialects.
const (
	GitHub  ForgeKind = "github" // github.com and GitHub Enterprise Server
	Gitea   ForgeKind = "gitea"
	Forgejo ForgeKind = "forgejo"
	GitLab  ForgeKind = "gitlab"
)

// ForgeKinds returns every supported kind.
func ForgeKinds() []ForgeKind { return []ForgeKind{GitHub, Gitea, Forgejo, GitLab} }

// payloadCommit is a commit as all four forges list it.
type payloadCommit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// githubPush covers GitHub's push payload and Gitea's/Forgejo's (which lack
// forced/created/deleted and add sender.username).
type githubPush struct {
	Ref        string          `json:"ref"`
	Before     string          `json:"before"`
	After      string          `json:"after"`
	Forced     bool            `json:"forced"`
	Commits    []payloadCommit `json:"commits"`
	Repository *struct {
		FullName string `json:"full_name"`
		CloneURL string `json:"clone_url"`
	} `json:"repository"`
	Sender struct {
		Login    string `json:"login"`
		Username string `json:"username"`
	} `json:"sender"`
	Pusher struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	} `json:"pusher"`
}

// gitlabPush covers GitLab's "Push Hook"/"Tag Push Hook" payloads and the
// push variant of "System Hook".
type gitlabPush struct {
	ObjectKind   string          `json:"object_kind"`
	EventName    string          `json:"event_name"`
	Ref          string          `json:"ref"`
	Before       string          `json:"before"`
	After        string          `json:"after"`
	CheckoutSHA  *string         `json:"checkout_sha"`
	UserUsername string          `json:"user_username"`
	UserName     string          `json:"user_name"`
	Commits      []payloadCommit `json:"commits"`
	Project      *struct {
		PathWithNamespace string `json:"path_with_namespace"`
		GitHTTPURL        string `json:"git_http_url"`
	} `json:"project"`
}

// ParsePush turns the raw body of a push event from forge kind into a
// state.Delivery (Forge, Event, Repo, CloneURL, Ref, Before, After,
// CheckoutSHA, Forced, Commits, Sender). It is pure: it does not set
// DeliveryGUID or ReceivedAt. Errors are *Error with CodeInvalid and a
// message naming the offending field.
func ParsePush(kind ForgeKind, event string, body []byte) (*state.Delivery, error) {
	d := &state.Delivery{Forge: string(kind), Event: event}
	var commits []payloadCommit
	switch kind {
	case GitHub, Gitea, Forgejo:
		var p githubPush
		if err := decode(body, &p); err != nil {
			return nil, err
		}
		if p.Repository == nil {
			return nil, errorf(CodeInvalid, "push payload has no repository object")
		}
		d.Repo, d.CloneURL = p.Repository.FullName, p.Repository.CloneURL
		d.Ref, d.Before, d.After, d.Forced = p.Ref, p.Before, p.After, p.Forced
		d.Sender = firstNonEmpty(p.Sender.Login, p.Sender.Username, p.Pusher.Username, p.Pusher.Name)
		commits = p.Commits
		if err := requireFields(map[string]string{
			"repository.full_name": d.Repo, "repository.clone_url": d.CloneURL,
		}); err != nil {
			return nil, err
		}
	case GitLab:
		var p gitlabPush
		if err := decode(body, &p); err != nil {
			return nil, err
		}
		if p.Project == nil {
			return nil, errorf(CodeInvalid, "push payload has no project object")
		}
		d.Repo, d.CloneURL = p.Project.PathWithNamespace, p.Project.GitHTTPURL
		d.Ref, d.Before, d.After = p.Ref, p.Before, p.After
		if p.CheckoutSHA != nil {
			d.CheckoutSHA = *p.CheckoutSHA
		}
		d.Sender = firstNonEmpty(p.UserUsername, p.UserName)
		commits = p.Commits
		if err := requireFields(map[string]string{
			"project.path_with_namespace": d.Repo, "project.git_http_url": d.CloneURL,
		}); err != nil {
			return nil, err
		}
		if d.CheckoutSHA != "" && !isCommitID(d.CheckoutSHA) {
			return nil, errorf(CodeInvalid, fmt.Sprintf("push payload field checkout_sha is not a commit id (40 or 64 hex digits): %.80q", d.CheckoutSHA))
		}
	default:
		return nil, errorf(CodeNotFound, fmt.Sprintf("unknown forge %q", kind))
	}
	if d.Ref == "" {
		return nil, errorf(CodeInvalid, "push payload has no ref")
	}
	for _, f := range []struct{ name, v string }{{"before", d.Before}, {"after", d.After}} {
		if !isCommitID(f.v) {
			return nil, errorf(CodeInvalid, fmt.Sprintf("push payload field %s is not a commit id (40 or 64 hex digits): %.80q", f.name, f.v))
		}
	}
	// Keep the newest commits only: the planner diffs with git and reads
	// the head commit from the mirror, so the list is for people, and a
	// push of 60 000 commits must not make a 10 MB record.
	if len(commits) > MaxStoredCommits {
		d.CommitsOmitted = len(commits) - MaxStoredCommits
		commits = commits[len(commits)-MaxStoredCommits:]
	}
	for _, c := range commits {
		msg := c.Message
		if len(msg) > maxStoredMessage {
			msg = strings.ToValidUTF8(msg[:maxStoredMessage], "") + "…"
		}
		d.Commits = append(d.Commits, state.Commit{ID: c.ID, Message: msg})
	}
	return d, nil
}

// MaxStoredCommits bounds the commits of a push payload a delivery keeps
// (the newest ones; Delivery.CommitsOmitted counts the rest).
const MaxStoredCommits = 100

// maxStoredMessage bounds each kept commit message, in bytes.
const maxStoredMessage = 4096

// decode parses body into v and turns JSON errors into messages that name the
// problem without echoing Go type names.
func decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("body is not valid JSON: %s at byte %d", se.Error(), se.Offset), Err: err}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("payload field %s is a JSON %s, want %s", field, te.Value, jsonKind(te.Type.Kind().String())), Err: err}
	default:
		return &Error{Code: CodeInvalid, Message: "body is not valid JSON: " + err.Error(), Err: err}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	default:
		return "number"
	}
}

func requireFields(fields map[string]string) error {
	for _, name := range []string{"repository.full_name", "repository.clone_url", "project.path_with_namespace", "project.git_http_url"} {
		if v, ok := fields[name]; ok && v == "" {
			return errorf(CodeInvalid, "push payload has no "+name)
		}
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// isCommitID reports whether s is a SHA-1 or SHA-256 object id in hex.
func isCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F')
	}) < 0
}
