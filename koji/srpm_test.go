package koji_test

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rida-build/rida/koji/kojitest"
	"github.com/rida-build/rida/runner"
)

// TestBackend_BuildsUploadedSRPM: a component with an SRPM (a scratch
// build's srpms, uploaded to the hub by the client) is built with that
// cli-build/ path as the build call's source instead of its repository,
// as MBS does; a path that is not a clean cli-build/….src.rpm is refused
// before anything is submitted.
func TestBackend_BuildsUploadedSRPM(t *testing.T) {
	bd := setup(t, kojitest.Options{})
	ctx := context.Background()
	const upload = "cli-build/1700000000.123456.abcdEFGH/b-2.0-7.src.rpm"
	// The client's upload (rpkg's uploadWrapper): one chunk, then the
	// final call with offset -1.
	data := []byte{0xed, 0xab, 0xee, 0xdb, 3, 0, 1, 0}
	sum := md5.Sum(data)
	dir, name := upload[:strings.LastIndex(upload, "/")], upload[strings.LastIndex(upload, "/")+1:]
	for _, args := range [][]any{
		{dir, name, len(data), hex.EncodeToString(sum[:]), 0, base64.StdEncoding.EncodeToString(data)},
		{dir, name, len(data), hex.EncodeToString(sum[:]), -1, ""},
	} {
		if _, err := bd.client.Call(ctx, "uploadFile", args...); err != nil {
			t.Fatal(err)
		}
	}
	s := testStream("srpmmod", map[string]int64{"a": 0, "b": 1, "c": 1})
	b, err := runner.Plan(s, runner.PlanOptions{ID: 11, Marking: "el9", SRPMs: map[string]string{
		"b": upload, "c": "cli-build/../../etc/c-1-1.src.rpm",
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = runner.Execute(ctx, bd.backend, b, runner.ExecuteOptions{Logger: quiet})
	var bf *runner.BuildFailure
	if !errors.As(err, &bf) || !slices.Equal(bf.Components, []string{"c"}) || !strings.Contains(bf.Error(), "is not a Koji upload path") {
		t.Fatalf("want a BuildFailure of c only, got %v", err)
	}
	var sources []string
	for _, id := range bd.hub.TaskIDs("build") {
		sources = append(sources, bd.hub.TaskSource(id))
	}
	if !slices.Contains(sources, upload) {
		t.Errorf("no build call with source %s; sources %q", upload, sources)
	}
	for _, src := range sources {
		if strings.Contains(src, "rpms/b") || strings.Contains(src, "etc/c") || strings.Contains(src, "rpms/c") {
			t.Errorf("built %q", src)
		}
	}
	for _, c := range b.Batches[2].Components {
		if c.Key == "b" && (c.State != runner.ComponentComplete || c.NVR != "b-2.0-7") {
			t.Errorf("b: %s %q nvr %q", c.State, c.Reason, c.NVR)
		}
	}
}
