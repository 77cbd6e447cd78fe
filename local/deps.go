package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rida-build/rida/buildmacros"
	"github.com/rida-build/rida/runner"
)

// depsFile is the name, inside a build directory, of the listing of the
// module builds whose packages are in the build's rpm database.
const depsFile = "deps.txt"

// depPlan is what Prepare installs from one module dependency.
type depPlan struct {
	dep      *runner.ModuleDep
	repo     string   // the directory holding its RPM files ("" when none are needed)
	files    []string // binary RPM files to install, inside repo
	names    []string // their NEVRAs
	filtered []string // NEVRAs left out by the dep's filter.rpms
}

// installDeps puts the binary packages of build.Deps into the build's rpm
// database (rpm -i --justdb, as publish and Reuse do), so that rpmbuild's
// BuildRequires check sees them next to the module's own earlier batches.
// Source RPMs, module-build-macros and packages whose name is in the dep's
// Filtered are left out. Every file is checked before anything is installed:
// a dep without ResultDir (built elsewhere) that has binary packages, a file
// that is missing, not a regular file, or a symlink (never followed: the
// dep's result directory must not lead elsewhere) is an ErrDepUnavailable
// naming the dep's NSVC and the file. Installing again (a resumed build
// prepares again) replaces the same packages. The result is listed in
// <build>/deps.txt for people.
func (b *Backend) installDeps(ctx context.Context, build *runner.Build, st *buildState) error {
	plans := make([]depPlan, 0, len(build.Deps))
	for i := range build.Deps {
		p, err := planDep(&build.Deps[i])
		if err != nil {
			return fmt.Errorf("local: prepare %s: %w", build.NSVC(), err)
		}
		plans = append(plans, p)
	}
	var files []string
	for _, p := range plans {
		files = append(files, p.files...)
	}
	if len(files) > 0 {
		logf, err := os.OpenFile(filepath.Join(st.logs, "prepare.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("local: prepare %s: %w", build.NSVC(), err)
		}
		defer logf.Close()
		args := append([]string{"--dbpath", st.rpmdb, "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers",
			"--ignorearch", "--ignoreos", "--replacepkgs", "--replacefiles"}, files...)
		if _, err := b.tool(ctx, "prepare "+build.NSVC()+": install module dependencies into build rpmdb", b.opts.Test.RPM, logf, args...); err != nil {
			return err
		}
	}
	if err := writeDepsFile(filepath.Join(st.dir, depsFile), plans); err != nil {
		return fmt.Errorf("local: prepare %s: %w", build.NSVC(), err)
	}
	for _, p := range plans {
		b.log.Info("local: module dependency in build root", "nsvc", build.NSVC(), "dep", depNSVC(p.dep),
			"dep_build", p.dep.BuildID, "repo", p.repo, "packages", len(p.files), "filtered", len(p.filtered))
	}
	return nil
}

// planDep picks the binary RPM files of one dependency and checks them.
func planDep(d *runner.ModuleDep) (depPlan, error) {
	p := depPlan{dep: d}
	filtered := map[string]bool{}
	for _, n := range d.Filtered {
		filtered[n] = true
	}
	var want []string
	for _, nevra := range d.RPMs {
		name, arch, ok := splitNEVRA(nevra)
		if !ok {
			return p, fmt.Errorf("module dependency %s (build %d): package %q is not name-epoch:version-release.arch: %w",
				depNSVC(d), d.BuildID, nevra, ErrDepUnavailable)
		}
		switch {
		case arch == "src" || name == buildmacros.PackageName:
			continue
		case filtered[name]:
			p.filtered = append(p.filtered, nevra)
			continue
		}
		want = append(want, nevra)
	}
	if len(want) == 0 {
		return p, nil
	}
	if d.ResultDir == "" {
		where := "it was not built by the local backend"
		if d.KojiTag != "" {
			where = "it was built in Koji (" + d.KojiTag + ")"
		}
		return p, fmt.Errorf("module dependency %s (build %d) has %d binary packages but no result directory: %s: %w",
			depNSVC(d), d.BuildID, len(want), where, ErrDepUnavailable)
	}
	repo, err := depRepoDir(d.ResultDir)
	if err != nil {
		return p, fmt.Errorf("module dependency %s (build %d): %w: %w", depNSVC(d), d.BuildID, err, ErrDepUnavailable)
	}
	p.repo = repo
	for _, nevra := range want {
		name := rpmFileName(nevra)
		if name != filepath.Base(name) || !filepath.IsLocal(name) || strings.ContainsRune(name, '\\') {
			return p, fmt.Errorf("module dependency %s (build %d): package %q does not name a file in %s: %w",
				depNSVC(d), d.BuildID, nevra, repo, ErrDepUnavailable)
		}
		path := filepath.Join(repo, name)
		fi, err := os.Lstat(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return p, fmt.Errorf("module dependency %s (build %d): %s is missing from %s: %w",
				depNSVC(d), d.BuildID, name, repo, ErrDepUnavailable)
		case err != nil:
			return p, fmt.Errorf("module dependency %s (build %d): %w: %w", depNSVC(d), d.BuildID, err, ErrDepUnavailable)
		case fi.Mode()&os.ModeSymlink != 0:
			return p, fmt.Errorf("module dependency %s (build %d): %s in %s is a symlink, not followed: %w",
				depNSVC(d), d.BuildID, name, repo, ErrDepUnavailable)
		case !fi.Mode().IsRegular():
			return p, fmt.Errorf("module dependency %s (build %d): %s in %s is not a regular file: %w",
				depNSVC(d), d.BuildID, name, repo, ErrDepUnavailable)
		}
		p.files = append(p.files, path)
		p.names = append(p.names, nevra)
	}
	return p, nil
}

// depRepoDir returns the directory holding a local build's RPM files given
// its result directory: runner.Result.Dir, which is the build's repo/
// directory itself, or the build directory with repo/ inside. The result
// directory is rida's own path and is resolved once; a repo/ inside it must
// be a real directory, not a symlink leading elsewhere.
func depRepoDir(resultDir string) (string, error) {
	root, err := filepath.EvalSymlinks(resultDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("result directory %s is gone", resultDir)
		}
		return "", fmt.Errorf("result directory %s: %w", resultDir, err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return "", err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return "", fmt.Errorf("result directory %s: %w", resultDir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("result directory %s is not a directory", resultDir)
	}
	sub := filepath.Join(root, "repo")
	fi, err = os.Lstat(sub)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return root, nil
	case err != nil:
		return "", fmt.Errorf("result directory %s: %w", resultDir, err)
	case fi.Mode()&os.ModeSymlink != 0:
		return "", fmt.Errorf("%s is a symlink, not followed", sub)
	case fi.IsDir():
		return sub, nil
	}
	return root, nil
}

// splitNEVRA returns the name and arch of name-[epoch:]version-release.arch.
func splitNEVRA(nevra string) (name, arch string, ok bool) {
	dot := strings.LastIndex(nevra, ".")
	if dot <= 0 || dot == len(nevra)-1 {
		return "", "", false
	}
	nevr, arch := nevra[:dot], nevra[dot+1:]
	r := strings.LastIndex(nevr, "-")
	if r <= 0 {
		return "", "", false
	}
	v := strings.LastIndex(nevr[:r], "-")
	if v <= 0 {
		return "", "", false
	}
	name = nevr[:v]
	if strings.Contains(name, ":") {
		return "", "", false
	}
	return name, arch, true
}

// depNSVC returns the dependency's name:stream:version:context.
func depNSVC(d *runner.ModuleDep) string {
	return fmt.Sprintf("%s:%s:%d:%s", d.Name, d.Stream, d.Version, d.Context)
}

// writeDepsFile lists, for people, which module builds' packages are in the
// build root and where their repositories are.
func writeDepsFile(path string, plans []depPlan) error {
	var s strings.Builder
	s.WriteString("# Module builds whose packages are in this build's rpm database (rpmdb/),\n")
	s.WriteString("# next to the packages of this module's earlier batches.\n")
	if len(plans) == 0 {
		s.WriteString("# none\n")
	}
	for _, p := range plans {
		kind := "transitive"
		if p.dep.Direct {
			kind = "direct"
		}
		fmt.Fprintf(&s, "\n%s build %d (%s)\n", depNSVC(p.dep), p.dep.BuildID, kind)
		if p.repo != "" {
			fmt.Fprintf(&s, "  repository: %s\n", p.repo)
		} else if p.dep.KojiTag != "" {
			fmt.Fprintf(&s, "  koji tag: %s\n", p.dep.KojiTag)
		}
		names := slices.Sorted(slices.Values(p.names))
		for _, n := range names {
			fmt.Fprintf(&s, "  installed: %s\n", n)
		}
		for _, n := range slices.Sorted(slices.Values(p.filtered)) {
			fmt.Fprintf(&s, "  filtered:  %s\n", n)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
