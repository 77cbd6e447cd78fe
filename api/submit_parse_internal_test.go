package api

import (
	"slices"
	"testing"
)

// TestSRPMFileName: the last element of a client's file name, which must
// be name-version-release.src.rpm in a safe alphabet; the package is the
// name part.
func TestSRPMFileName(t *testing.T) {
	for _, tc := range []struct{ in, file, pkg string }{
		{"pkg-a-1.0-1.src.rpm", "pkg-a-1.0-1.src.rpm", "pkg-a"},
		{"../../pkg-a-1.0-1.src.rpm", "pkg-a-1.0-1.src.rpm", "pkg-a"},
		{`C:\tmp\perl-Foo-Bar-0.1-2.fc40.src.rpm`, "perl-Foo-Bar-0.1-2.fc40.src.rpm", "perl-Foo-Bar"},
		{"gcc-c++-13^1-1.src.rpm", "gcc-c++-13^1-1.src.rpm", "gcc-c++"},
		{"x.src.rpm", "", ""},
		{"a-1.src.rpm", "", ""},
		{"a--1.src.rpm", "", ""},
		{"a-1-.src.rpm", "", ""},
		{"-a-1-1.src.rpm", "", ""},
		{".a-1-1.src.rpm", "", ""},
		{"a b-1-1.src.rpm", "", ""},
		{"a-1-1.rpm", "", ""},
		{"../..", "", ""},
		{"", "", ""},
	} {
		file, pkg, err := srpmFileName(tc.in)
		if file != tc.file || pkg != tc.pkg || (err != nil) != (tc.file == "") {
			t.Errorf("srpmFileName(%q) = %q, %q, %v; want %q, %q", tc.in, file, pkg, err, tc.file, tc.pkg)
		}
	}
}

// TestKojiUploadPath: a clean relative cli-build/ path to a .src.rpm; the
// names it may stand for, the stem first.
func TestKojiUploadPath(t *testing.T) {
	for _, tc := range []struct {
		in    string
		names []string
	}{
		{"cli-build/1700000000.1.ab/pkg-a-1-1.src.rpm", []string{"pkg-a-1-1", "pkg-a"}},
		{"cli-build/x/pkg-a.src.rpm", []string{"pkg-a"}},
		{"cli-build/../x/pkg-a-1-1.src.rpm", nil},
		{"cli-build/x/../../pkg-a-1-1.src.rpm", nil},
		{"cli-build//x/pkg-a-1-1.src.rpm", nil},
		{"/cli-build/x/pkg-a-1-1.src.rpm", nil},
		{"cli-build/x/pkg-a-1-1.rpm", nil},
		{"other/x/pkg-a-1-1.src.rpm", nil},
		{`cli-build/x\..\pkg-a-1-1.src.rpm`, nil},
	} {
		names, err := kojiUploadPath(tc.in)
		if !slices.Equal(names, tc.names) || (err != nil) != (tc.names == nil) {
			t.Errorf("kojiUploadPath(%q) = %q, %v; want %q", tc.in, names, err, tc.names)
		}
	}
}

// TestFormValue: form fields become the JSON values a JSON body carries.
func TestFormValue(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"scratch", "True", "true"},
		{"scratch", "0", "false"},
		{"scratch", "yes", ""},
		{"reuse_components_from", "12", "12"},
		{"reuse_components_from", "a:b:1:c", `"a:b:1:c"`},
		{"buildrequire_overrides", `{"platform": ["el8"]}`, `{"platform": ["el8"]}`},
		{"buildrequire_overrides", `platform=el8`, ""},
		{"module_name", `say "hi"`, `"say \"hi\""`},
	} {
		got, err := formValue(tc.name, tc.in)
		if string(got) != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("formValue(%s, %q) = %s, %v; want %s", tc.name, tc.in, got, err, tc.want)
		}
	}
}
