package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookupSecret(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SET": "from-env"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		name, env, file, want, err string
	}{
		{"EnvWins", "SET", file, "from-env", ""},
		{"FileTrimmed", "UNSET", file, "from-file", ""},
		{"FileOnly", "", file, "from-file", ""},
		{"Neither", "UNSET", "", "", ""},
		{"MissingFile", "", filepath.Join(dir, "nope"), "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lookupSecret(getenv, tc.env, tc.file)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("lookupSecret = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestConfig_SecretErrorsNameThePlaceNotTheValue: every "secret missing"
// error says where rida looked, and no error ever holds a secret's value.
func TestConfig_SecretErrorsNameThePlaceNotTheValue(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.forgeSecrets(func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "environment variable RIDA_WEBHOOK_SECRET") {
		t.Errorf("forgeSecrets err = %v", err)
	}
	cfg.API.Tokens = append(cfg.API.Tokens, struct {
		Name      string `yaml:"name"`
		TokenEnv  string `yaml:"token_env"`
		TokenFile string `yaml:"token_file"`
	}{Name: "ops", TokenEnv: "T"})
	if _, err := cfg.apiTokens(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "environment variable T") {
		t.Errorf("apiTokens err = %v", err)
	}
	toks, err := cfg.apiTokens(func(string) string { return "hunter2" })
	if err != nil || toks["ops"] != "hunter2" {
		t.Errorf("apiTokens = %v, %v", toks, err)
	}
}
