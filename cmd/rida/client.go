package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiClient talks to a rida server's HTTP API for the client subcommands
// (submit, status, cancel, rerun, deliveries, which-modules).
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags are the flags every client subcommand takes.
type clientFlags struct {
	server, token, output *string
}

// addClientFlags adds --server, --token and --output. The token's default
// is read from $RIDA_TOKEN only when the client is made, never as the
// flag's default value, so --help cannot print it.
func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		server: fs.String("server", cmp.Or(os.Getenv("RIDA_SERVER"), "http://127.0.0.1:8080"), "rida server: URL or host:port (env RIDA_SERVER)"),
		token:  fs.String("token", "", "API bearer token for write calls (default: env RIDA_TOKEN)"),
		output: fs.String("output", "text", "output format: text or json"),
	}
}

// serverURL turns --server into a base URL: a bare host:port (or host)
// gets http://.
func serverURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server: %q is not an http(s) URL or host:port", s)
	}
	return strings.TrimRight(s, "/"), nil
}

func (f clientFlags) client() (*apiClient, error) {
	if *f.output != "text" && *f.output != "json" {
		return nil, fmt.Errorf("--output: %q, want text or json", *f.output)
	}
	base, err := serverURL(*f.server)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: base, token: cmp.Or(*f.token, os.Getenv("RIDA_TOKEN")), http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// apiError is a failed call: the server's answer, or no answer at all.
type apiError struct {
	Status  int    // 0: no answer
	Message string // the server's "message", or the transport error
}

func (e *apiError) Error() string {
	switch e.Status {
	case 0:
		return "server unreachable: " + e.Message
	case http.StatusUnauthorized:
		return fmt.Sprintf("%d %s: %s (give the token with --token or $RIDA_TOKEN; it must be one of the server's api.tokens)",
			e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// exitCode maps a call's error onto rida's exit codes: no answer or 5xx →
// 3; any 4xx (refused, not found, unauthorised, conflict) → 1. Exit 2 is
// kept for arguments the CLI itself rejects.
func exitCode(err error) int {
	var ae *apiError
	switch {
	case err == nil:
		return exitOK
	case !errors.As(err, &ae):
		return exitInfra
	case ae.Status == 0 || ae.Status >= 500:
		return exitInfra
	}
	return exitFail
}

// call sends method path with body (JSON, may be nil) and decodes the JSON
// answer into out (may be nil). It returns the raw answer too, for
// --output json.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, &apiError{Message: err.Error()}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" && method != http.MethodGet {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &apiError{Message: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &apiError{Message: "reading the answer: " + err.Error()}
	}
	if resp.StatusCode >= 400 {
		var e struct{ Message string }
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return data, &apiError{Status: resp.StatusCode, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return data, &apiError{Status: resp.StatusCode, Message: "the answer is not the expected JSON: " + err.Error()}
		}
	}
	return data, nil
}

// parseArgs parses fs allowing flags after positional arguments
// ("rida submit URL --branch B") and returns the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// writeRaw prints a raw JSON answer indented.
func writeRaw(w io.Writer, data []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") != nil {
		w.Write(data)
		return
	}
	buf.WriteByte('\n')
	w.Write(buf.Bytes())
}

// fail prints err for the command and returns its exit code.
func clientFail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "rida %s: %v\n", cmd, err)
	return exitCode(err)
}
