package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testRealm = "RIDA.TEST"

// kdc is a real MIT Kerberos KDC (Debian's krb5-kdc) on loopback, with its
// own realm, database and configuration in a temporary directory.
type kdc struct {
	dir string
	env []string // KRB5_CONFIG, KRB5_KDC_PROFILE
}

// startKDC creates realm RIDA.TEST with the given user principals
// (name → password) and the service principal HTTP/127.0.0.1, whose keys
// it writes to the returned KDC's keytab().
func startKDC(t *testing.T, users map[string]string) *kdc {
	t.Helper()
	for _, tool := range []string{"/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local"} {
		if _, err := os.Stat(tool); err != nil {
			t.Fatalf("%s is missing: run scripts/install-deps (it installs Debian's krb5-kdc and krb5-admin-server) — %v", tool, err)
		}
	}
	if _, err := exec.LookPath("kinit"); err != nil {
		t.Fatalf("kinit is missing: run scripts/install-deps (it installs Debian's krb5-user) — %v", err)
	}
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	krb5conf := fmt.Sprintf(`[libdefaults]
	default_realm = %[1]s
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
[realms]
	%[1]s = {
		kdc = 127.0.0.1:%[2]d
	}
[domain_realm]
	127.0.0.1 = %[1]s
`, testRealm, port)
	kdcconf := fmt.Sprintf(`[kdcdefaults]
	kdc_listen = 127.0.0.1:%[2]d
	kdc_tcp_listen = 127.0.0.1:%[2]d
[realms]
	%[1]s = {
		database_name = %[3]s/principal
		key_stash_file = %[3]s/stash
		acl_file = %[3]s/kadm5.acl
		max_life = 1h
	}
[logging]
	kdc = FILE:%[3]s/kdc.log
	admin_server = FILE:%[3]s/kadmin.log
	default = FILE:%[3]s/krb5.log
`, testRealm, port, dir)
	for name, text := range map[string]string{"krb5.conf": krb5conf, "kdc.conf": kdcconf, "kadm5.acl": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k := &kdc{dir: dir, env: []string{"KRB5_CONFIG=" + filepath.Join(dir, "krb5.conf"), "KRB5_KDC_PROFILE=" + filepath.Join(dir, "kdc.conf")}}
	k.run(t, "", "/usr/sbin/kdb5_util", "create", "-s", "-r", testRealm, "-P", "master-password-for-tests")
	for user, pw := range users {
		k.run(t, "", "/usr/sbin/kadmin.local", "-r", testRealm, "-q", fmt.Sprintf("addprinc -pw %s %s", pw, user))
	}
	k.run(t, "", "/usr/sbin/kadmin.local", "-r", testRealm, "-q", "addprinc -randkey HTTP/127.0.0.1")
	k.run(t, "", "/usr/sbin/kadmin.local", "-r", testRealm, "-q", "ktadd -k "+k.keytab()+" HTTP/127.0.0.1")

	cmd := exec.Command("/usr/sbin/krb5kdc", "-n", "-r", testRealm)
	cmd.Env = append(os.Environ(), k.env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "kdc.log"))
			t.Logf("kdc.log:\n%s", log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the KDC does not listen on 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return k
}

func (k *kdc) keytab() string { return filepath.Join(k.dir, "http.keytab") }

// run runs an MIT tool against this realm, with stdin as its input.
func (k *kdc) run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), k.env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, args[0], err, out)
	}
	return string(out)
}

// kinit gets user's ticket into a new credential cache, typing the
// password on kinit's standard input, and returns KRB5CCNAME.
func (k *kdc) kinit(t *testing.T, user, password string) string {
	t.Helper()
	ccache := "FILE:" + filepath.Join(k.dir, "ccache-"+user)
	cmd := exec.Command("kinit", user+"@"+testRealm)
	cmd.Env = append(os.Environ(), append(k.env, "KRB5CCNAME="+ccache)...)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit %s: %v\n%s", user, err, out)
	}
	return ccache
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// negotiate runs curl --negotiate, an SPNEGO client built on MIT's GSS-API
// that, like requests_kerberos (fedpkg's), sends its ticket only after a
// 401 that offers "WWW-Authenticate: Negotiate". It returns the status and
// the JSON body.
func (k *kdc) negotiate(t *testing.T, ccache, method, url, body string) (int, map[string]any) {
	t.Helper()
	args := []string{"-sS", "--negotiate", "-u", ":", "-X", method, "-o", "-", "-w", "\n%{http_code}", url}
	if body != "" {
		// As requests_kerberos sends it: data=json.dumps(body), no type.
		args = append(args, "-H", "Content-Type:", "--data-binary", body)
	}
	cmd := exec.Command("curl", args...)
	cmd.Env = append(os.Environ(), append(k.env, "KRB5CCNAME="+ccache)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s %s: %v\n%s", method, url, err, out)
	}
	text := strings.TrimSpace(string(out))
	i := strings.LastIndexByte(text, '\n')
	var code int
	fmt.Sscan(text[i+1:], &code)
	return code, decodeObject(t, bufio.NewReader(strings.NewReader(text[:i+1])))
}

// TestServe_Kerberos: 'rida serve' with api.auth.kerberos accepts a ticket
// from a real MIT KDC through SPNEGO; the build's owner is the principal
// without its realm; a call without a ticket gets 401 offering Negotiate;
// only the owner (or an admin) may cancel.
func TestServe_Kerberos(t *testing.T) {
	k := startKDC(t, map[string]string{"alice": "alice-password", "bob": "bob-password", "boss": "boss-password"})
	a := startAuthServe(t, fmt.Sprintf("  tokens: [{name: ci, token_env: T_API}]\n  auth: {kerberos: {keytab: %q, principal: \"HTTP/127.0.0.1\"}, admin_users: [boss]}", k.keytab()),
		"T_API=ci-token")

	// No ticket: 401, offering Negotiate (and Bearer, for api.tokens).
	code, challenges, body := a.call(http.MethodPost, "/module-builds/", "", a.submitBody())
	wantError(t, "submit without a ticket", code, body, 401, "Authorization: Negotiate")
	if !containsFold(challenges, "Negotiate") || !containsFold(challenges, `Bearer realm="rida"`) {
		t.Errorf("401 WWW-Authenticate = %q; want Negotiate and Bearer", challenges)
	}
	// A token that is not a ticket is refused with a reason.
	code, _, body = a.call(http.MethodPost, "/module-builds/", "Negotiate bm90IGEgdGlja2V0", a.submitBody())
	wantError(t, "submit with garbage", code, body, 401, "the Kerberos (SPNEGO) token was refused")

	// about/ names the method, as MBS does.
	if _, _, about := a.call(http.MethodGet, "/about/", "", ""); about["auth_method"] != "kerberos" {
		t.Errorf("about auth_method = %v", about["auth_method"])
	}

	alice := k.kinit(t, "alice", "alice-password")
	code, b := k.negotiate(t, alice, http.MethodPost, a.url("/module-builds/"), a.submitBody())
	if code != 201 {
		t.Fatalf("submit through SPNEGO: %d %v", code, b)
	}
	id := a.running(b)
	if got := a.build(id); got["owner"] != "alice" {
		t.Errorf("owner = %v, want alice (the principal without its realm)", got["owner"])
	}

	// Cancel: bob (another principal) and the ci token are not the owner.
	bob := k.kinit(t, "bob", "bob-password")
	code, b = k.negotiate(t, bob, http.MethodPatch, a.url(fmt.Sprintf("/module-builds/%v", id)), `{"state": "failed"}`)
	wantError(t, "cancel by bob", code, b, 403, "not the owner of module build")
	code, _, b = a.call(http.MethodPatch, fmt.Sprintf("/module-builds/%v", id), "Bearer ci-token", `{"state": "failed"}`)
	wantError(t, "cancel by the ci token", code, b, 403, "not the owner of module build")
	code, b = k.negotiate(t, alice, http.MethodPatch, a.url(fmt.Sprintf("/module-builds/%v", id)), `{"state": "failed"}`)
	if code != 200 {
		t.Fatalf("cancel by the owner: %d %v", code, b)
	}
	if got := a.waitState(id, "failed"); !strings.Contains(fmt.Sprint(got["state_reason"]), "cancelled by alice") {
		t.Errorf("state_reason = %v", got["state_reason"])
	}

	// An admin may cancel anyone's build.
	code, _, b = a.call(http.MethodPost, "/module-builds/", "Bearer ci-token", a.submitBody())
	if code != 201 {
		t.Fatalf("submit with the ci token: %d %v", code, b)
	}
	id2 := a.running(b)
	if got := a.build(id2); got["owner"] != "ci" {
		t.Errorf("owner = %v, want ci", got["owner"])
	}
	boss := k.kinit(t, "boss", "boss-password")
	code, b = k.negotiate(t, boss, http.MethodPatch, a.url(fmt.Sprintf("/module-builds/%v", id2)), `{"state": "failed"}`)
	if code != 200 {
		t.Fatalf("cancel by an admin: %d %v", code, b)
	}
	if got := a.waitState(id2, "failed"); !strings.Contains(fmt.Sprint(got["state_reason"]), "cancelled by boss") {
		t.Errorf("state_reason = %v", got["state_reason"])
	}
}

func containsFold(list []string, want string) bool {
	for _, s := range list {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}
