package local

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileCheckout returns an empty checkout directory and a secret token
// file outside it.
func hostileCheckout(t *testing.T) (dir, secretPath, secret string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "work", "c", "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	secret = "rida-internal-secret-7f3a9c"
	secretPath = filepath.Join(base, "token")
	if err := os.WriteFile(secretPath, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, secretPath, secret
}

// TestFetchSources_HostileFiles: the lookaside step on its own, with the
// checkout made hostile directly (git cannot express hard links, FIFOs or
// sparse files; checkTree, which runs first in a build, is bypassed here):
// every case is a *repoFileError or *lookasideError naming the file and
// quoting nothing of it, the secret file is neither read into an error nor
// written, and nothing blocks.
func TestFetchSources_HostileFiles(t *testing.T) {
	const payload = "payload\n"
	sum := sha512.Sum512([]byte(payload))
	line := "SHA512 (data.txt) = " + hex.EncodeToString(sum[:]) + "\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}))
	defer srv.Close()

	tests := []struct {
		name  string
		plant func(t *testing.T, dir, secretPath string)
		want  string
	}{
		{"SymlinkedSources", func(t *testing.T, dir, secretPath string) {
			must(t, os.Symlink(strings.Repeat("../", 30)+strings.TrimPrefix(secretPath, "/"), filepath.Join(dir, "sources")))
		}, "sources: is a symlink"},
		{"HardlinkedSources", func(t *testing.T, dir, secretPath string) {
			must(t, os.Link(secretPath, filepath.Join(dir, "sources")))
		}, "sources: has 2 hard links"},
		{"FIFOSources", func(t *testing.T, dir, secretPath string) {
			must(t, syscall.Mkfifo(filepath.Join(dir, "sources"), 0o644))
		}, "sources: is not a regular file (a FIFO)"},
		{"SparseGiBSources", func(t *testing.T, dir, secretPath string) {
			f, err := os.Create(filepath.Join(dir, "sources"))
			must(t, err)
			must(t, f.Truncate(1<<30))
			must(t, f.Close())
		}, "sources: is 1073741824 bytes, more than the 1048576 allowed"},
		{"SecretAsSources", func(t *testing.T, dir, secretPath string) {
			// Content that does not parse is not quoted.
			data, err := os.ReadFile(secretPath)
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, "sources"), data, 0o644))
		}, "sources line 1 is neither"},
		{"PartSymlink", func(t *testing.T, dir, secretPath string) {
			must(t, os.WriteFile(filepath.Join(dir, "sources"), []byte(line), 0o644))
			must(t, os.Symlink(secretPath, filepath.Join(dir, "data.txt.part")))
		}, ""},
		{"TargetSymlink", func(t *testing.T, dir, secretPath string) {
			must(t, os.WriteFile(filepath.Join(dir, "sources"), []byte(line), 0o644))
			must(t, os.Symlink(secretPath, filepath.Join(dir, "data.txt")))
		}, "data.txt: is a symlink"},
		{"TargetFIFO", func(t *testing.T, dir, secretPath string) {
			must(t, os.WriteFile(filepath.Join(dir, "sources"), []byte(line), 0o644))
			must(t, syscall.Mkfifo(filepath.Join(dir, "data.txt"), 0o644))
		}, "data.txt: is not a regular file (a FIFO)"},
		{"DotDot", func(t *testing.T, dir, secretPath string) {
			must(t, os.WriteFile(filepath.Join(dir, "sources"), []byte("SHA512 (..) = "+hex.EncodeToString(sum[:])+"\n"), 0o644))
		}, "sources line 1 does not name a plain file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, secretPath, secret := hostileCheckout(t)
			tt.plant(t, dir, secretPath)
			b := &Backend{opts: Options{HTTPClient: &http.Client{Timeout: 10 * time.Second}}}
			done := make(chan error, 1)
			go func() { done <- b.fetchSources(t.Context(), dir, srv.URL+"/c", io.Discard) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("fetchSources blocks")
			}
			if got, rerr := os.ReadFile(secretPath); rerr != nil || string(got) != secret+"\n" {
				t.Errorf("the secret file was changed: %q, %v", got, rerr)
			}
			if tt.want == "" {
				// The planted .part symlink was replaced, not written through.
				if err != nil {
					t.Fatalf("fetchSources = %v", err)
				}
				got, rerr := os.ReadFile(filepath.Join(dir, "data.txt"))
				if rerr != nil || string(got) != payload {
					t.Errorf("data.txt = %q, %v", got, rerr)
				}
				return
			}
			var re *repoFileError
			var le *lookasideError
			if !errors.As(err, &re) && !errors.As(err, &le) {
				t.Fatalf("fetchSources = %v (%T), want the component's error", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("fetchSources = %q, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error quotes the secret: %q", err)
			}
		})
	}
}

// TestCheckTree: symlinks that resolve inside the checkout are kept; any
// that leads out (absolute, climbing, through another link) or dangles,
// and any FIFO, fails the check, naming the path and not the target.
func TestCheckTree(t *testing.T) {
	tests := []struct {
		name  string
		plant func(dir string) error
		ok    bool
	}{
		{"Inside", func(dir string) error {
			os.Mkdir(filepath.Join(dir, "d"), 0o755)
			os.WriteFile(filepath.Join(dir, "d", "f"), nil, 0o644)
			return os.Symlink("d/f", filepath.Join(dir, "link"))
		}, true},
		{"Absolute", func(dir string) error { return os.Symlink("/etc/passwd", filepath.Join(dir, "link")) }, false},
		{"Climbing", func(dir string) error { return os.Symlink("../../x", filepath.Join(dir, "link")) }, false},
		{"ThroughDotLink", func(dir string) error {
			// s → "." and x → "s/.." look inside when cleaned as strings
			// but resolve to the checkout's parent.
			if err := os.Symlink(".", filepath.Join(dir, "s")); err != nil {
				return err
			}
			return os.Symlink("s/..", filepath.Join(dir, "x"))
		}, false},
		{"Dangling", func(dir string) error { return os.Symlink("missing", filepath.Join(dir, "link")) }, false},
		{"FIFO", func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "p"), 0o644) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a", "src")
			must(t, os.MkdirAll(dir, 0o755))
			must(t, tt.plant(dir))
			err := checkTree(dir)
			var re *repoFileError
			switch {
			case tt.ok && err != nil:
				t.Errorf("checkTree = %v, want nil", err)
			case !tt.ok && !errors.As(err, &re):
				t.Errorf("checkTree = %v, want a *repoFileError", err)
			case !tt.ok && (strings.Contains(err.Error(), "passwd") || strings.Contains(err.Error(), "../")):
				t.Errorf("checkTree quotes the link's target: %q", err)
			}
		})
	}
}

// TestCopyFile_RefusesLinks: a built RPM that is a symlink (to a host file)
// or a hard link is not copied; a symlink planted at the temporary name is
// replaced, not written through.
func TestCopyFile_RefusesLinks(t *testing.T) {
	dir, secretPath, secret := hostileCheckout(t)
	link := filepath.Join(dir, "leak.rpm")
	must(t, os.Symlink(secretPath, link))
	var re *repoFileError
	if err := copyFile(link, filepath.Join(dir, "out.rpm")); !errors.As(err, &re) {
		t.Errorf("copyFile(symlink) = %v, want *repoFileError", err)
	}
	hard := filepath.Join(dir, "hard.rpm")
	must(t, os.Link(secretPath, hard))
	if err := copyFile(hard, filepath.Join(dir, "out.rpm")); !errors.As(err, &re) {
		t.Errorf("copyFile(hard link) = %v, want *repoFileError", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "out.rpm")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("out.rpm exists after refused copies: %v", err)
	}
	good := filepath.Join(dir, "good.rpm")
	must(t, os.WriteFile(good, []byte("rpm"), 0o644))
	dst := filepath.Join(dir, "dst.rpm")
	must(t, os.Symlink(secretPath, dst+".tmp"))
	if err := copyFile(good, dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(secretPath); string(got) != secret+"\n" {
		t.Errorf("copyFile wrote through a planted symlink: secret file now %q", got)
	}
}

// TestReadTail: errorLines reads only the end of a large log.
func TestReadTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(p)
	must(t, err)
	must(t, f.Truncate(1<<30))
	_, err = f.WriteAt([]byte("error: the end\n"), 1<<30)
	must(t, err)
	must(t, f.Close())
	data, err := readTail(p, 64<<10)
	must(t, err)
	if len(data) != 64<<10 || !strings.HasSuffix(string(data), "error: the end\n") {
		t.Errorf("readTail: %d bytes, ends %q", len(data), data[len(data)-20:])
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
