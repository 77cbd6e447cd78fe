package state

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStore_EnqueueWithBuild_Uploads: an uploaded modulemd and SRPMs are
// stored with the request in the transaction that makes its init record
// (they survive a reopen), the record lists the SRPMs, another submission
// never merges with an upload (409), and a push merging in makes the
// request a regular build of the repository, dropping the uploads.
func TestStore_EnqueueWithBuild_Uploads(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC)
	yaml := "document: modulemd\nversion: 2\ndata: {summary: s}\n"
	req := BuildRequest{Module: "foo", Stream: "main", Kind: RequestModule, Reasons: []string{"scratch build submitted by alice"}}
	opts := RequestOptions{Owner: "alice", Scratch: true, Modulemd: yaml, SubmittedAt: at,
		SRPMs: []SRPM{{Package: "pkg-a", Path: "0123abcd/pkg-a-2.0-1.src.rpm"}}}
	res, builds, err := b.store.EnqueueWithBuild(ctx, req, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(builds) != 1 || !builds[0].Scratch || !slices.Equal(builds[0].SRPMs, []string{"0123abcd/pkg-a-2.0-1.src.rpm"}) ||
		builds[0].ModuleRepo != "" || builds[0].ModuleCommit != "" {
		t.Fatalf("record %+v", builds)
	}
	if err := b.store.Close(); err != nil {
		t.Fatal(err)
	}
	b.store = MustOpen(t, b.path, Options{Now: b.clock.Now})
	got, err := b.store.RequestOptionsFor(ctx, res.Request.ID)
	if err != nil || got.Modulemd != yaml || !got.SubmittedAt.Equal(at) || !slices.Equal(got.SRPMs, opts.SRPMs) || !got.HasUploads() {
		t.Fatalf("options after reopen %+v, %v", got, err)
	}

	// Neither another upload nor a plain scratch submission merges in.
	for _, o := range []RequestOptions{{Scratch: true, Modulemd: yaml}, {Scratch: true}} {
		r := req
		if o.Modulemd == "" {
			r.ModuleRepo, r.ModuleCommit = "https://src.example/modules/foo", "c1"
		}
		_, _, err := b.store.EnqueueWithBuild(ctx, r, o)
		var ce *ConflictError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "is not merged with another") {
			t.Errorf("merge into an upload (%+v): %v", o, err)
		}
	}
	if got, _ := b.store.RequestOptionsFor(ctx, res.Request.ID); got.Modulemd != yaml || len(got.SRPMs) != 1 {
		t.Errorf("the refused merges changed the options: %+v", got)
	}

	// A push merging in: a regular build of the repository.
	push := BuildRequest{Module: "foo", Stream: "main", Kind: RequestComponent, ModuleRepo: "https://src.example/modules/foo", Reasons: []string{"push"}}
	if _, err := b.store.Enqueue(ctx, push); err != nil {
		t.Fatal(err)
	}
	got, err = b.store.RequestOptionsFor(ctx, res.Request.ID)
	if err != nil || got.Scratch || got.HasUploads() || !got.SubmittedAt.IsZero() || got.Owner != "alice" {
		t.Errorf("options after a push merged in: %+v, %v", got, err)
	}
	mb, err := b.store.GetModuleBuild(ctx, builds[0].ID)
	if err != nil || mb.Scratch || mb.SRPMs != nil || mb.ModuleRepo != push.ModuleRepo {
		t.Errorf("record after a push merged in: %+v, %v", mb, err)
	}
}
