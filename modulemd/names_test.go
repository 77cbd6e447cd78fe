package modulemd

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	t.Parallel()
	if got := NSVC("foo", "latest", 20160927144203, "c0ffee43"); got != "foo:latest:20160927144203:c0ffee43" {
		t.Errorf("NSVC = %q", got)
	}
	if got := NSVC("foo", "latest", 1, ""); got != "foo:latest:1" {
		t.Errorf("NSVC without context = %q", got)
	}
	if got := ModularityLabel("foo", "latest", 1, ""); got != "foo:latest:1:" {
		t.Errorf("ModularityLabel = %q", got)
	}
	// python3 -c 'import hashlib; print(hashlib.sha1(b"testmodule.master.20180205135154.9c690d0e").hexdigest()[:8])'
	//   -> b18c19fc
	if got := DistTag("testmodule", "master", 20180205135154, "9c690d0e", "f28", 2); got != ".module+f28+2+b18c19fc" {
		t.Errorf("DistTag = %q", got)
	}
	if got := DistTag("testmodule", "master", 20180205135154, "9c690d0e", "", 2); got != ".module+2+b18c19fc" {
		t.Errorf("DistTag without marking = %q", got)
	}
	if got := KojiTag("testmodule", "master", 20180205135154, "9c690d0e"); got != "module-testmodule-master-20180205135154-9c690d0e" {
		t.Errorf("KojiTag = %q", got)
	}
	// More than 250 characters: with "-build" over 256, hash fallback.
	long := strings.Repeat("a", 250)
	got := KojiTag(long, "b", 1, "c")
	if want := "module-" + nsvcHash(long, "b", 1, "c")[:16]; got != want || len(got) != len("module-")+16 {
		t.Errorf("long KojiTag = %q, want %q", got, want)
	}
	if got := KojiTag("a", "b", 1, "c"); got != "module-a-b-1-c" {
		t.Errorf("KojiTag = %q", got)
	}
	// python3 -c 'import hashlib; print(hashlib.sha1(b"a.b.1.c").hexdigest()[:16])' -> cd07c3b1abfbab39
	if got := nsvcHash("a", "b", 1, "c")[:16]; got != "cd07c3b1abfbab39" {
		t.Errorf("nsvcHash = %q", got)
	}
	// Boundary: exactly 250 characters stays readable.
	n := strings.Repeat("x", 250-len("module--b-1-c"))
	if got := KojiTag(n, "b", 1, "c"); len(got) != 250 || !strings.HasPrefix(got, "module-x") {
		t.Errorf("250-char KojiTag = %q (%d)", got, len(got))
	}
}

// TestScratchKojiTag: MBS's generate_koji_tag with scratch: scrmod-, the
// NSVC, +<build id>; hashed (prefix and suffix kept) when too long.
func TestScratchKojiTag(t *testing.T) {
	if got := ScratchKojiTag("testmodule", "master", 20180205135154, "9c690d0e_1", 7, 256); got != "scrmod-testmodule-master-20180205135154-9c690d0e_1+7" {
		t.Errorf("ScratchKojiTag = %q", got)
	}
	long := strings.Repeat("n", 40)
	want := "scrmod-" + nsvcHash(long, "s", 1, "c_2")[:16] + "+12"
	if got := ScratchKojiTag(long, "s", 1, "c_2", 12, 56); got != want {
		t.Errorf("long ScratchKojiTag = %q, want %q", got, want)
	}
	if got := ScratchKojiTag(long, "s", 1, "c_2", 12, 256); strings.Contains(got, nsvcHash(long, "s", 1, "c_2")[:16]) {
		t.Errorf("a 256-character limit should not hash %q", got)
	}
}
