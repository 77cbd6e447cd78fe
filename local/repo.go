package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rida-build/rida/buildmacros"
	"github.com/rida-build/rida/runner"
)

// publish copies a batch's RPMs into the repository, installs the binary
// ones into the build's rpm database, regenerates repodata and records when
// repomd.xml was written. Tool output goes to logs/batch-<n>.log.
func (b *Backend) publish(ctx context.Context, st *buildState, number int, started time.Time, done []outcome) error {
	op := fmt.Sprintf("publish batch %d", number)
	logf, err := os.Create(filepath.Join(st.logs, "batch-"+strconv.Itoa(number)+".log"))
	if err != nil {
		return fmt.Errorf("local: %s: %w", op, err)
	}
	defer logf.Close()

	var binaries []string
	for _, o := range done {
		for _, f := range o.files {
			dst := filepath.Join(st.repo, filepath.Base(f))
			if err := copyFile(f, dst); err != nil {
				return fmt.Errorf("local: %s: %w", op, err)
			}
			if !strings.HasSuffix(f, ".src.rpm") {
				binaries = append(binaries, dst)
			}
		}
	}
	if len(binaries) > 0 {
		args := append([]string{"--dbpath", st.rpmdb, "-i", "--justdb", "--nodeps", "--noscripts", "--notriggers",
			"--ignorearch", "--ignoreos", "--replacepkgs", "--replacefiles"}, binaries...)
		if _, err := b.tool(ctx, op+": install into build rpmdb", b.opts.Test.RPM, logf, args...); err != nil {
			return err
		}
	}
	written, err := b.createrepo(ctx, st, op, logf)
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.repos = append(st.repos, BatchRepo{Batch: number, Started: started, Written: written, RepoMD: filepath.Join(st.repo, "repodata", "repomd.xml")})
	st.mu.Unlock()
	b.log.Info("local: batch repository written", "dir", st.dir, "batch", number, "packages", len(binaries), "repomd_mtime", written)
	return nil
}

// createrepo regenerates st.repo's metadata and returns repomd.xml's mtime.
func (b *Backend) createrepo(ctx context.Context, st *buildState, op string, log io.Writer) (time.Time, error) {
	if _, err := b.tool(ctx, op+": createrepo", b.opts.Test.CreateRepo, log, "--quiet", "--no-database", st.repo); err != nil {
		return time.Time{}, err
	}
	fi, err := os.Stat(filepath.Join(st.repo, "repodata", "repomd.xml"))
	if err != nil {
		return time.Time{}, fmt.Errorf("local: %s: %w", op, err)
	}
	return fi.ModTime(), nil
}

// copyFile copies the regular file src to dst through dst+".tmp". src is a
// built RPM in a work directory the build could write, or a package of an
// earlier build: a symlink is never followed, and anything but a regular
// file with one link (a FIFO, a device, a hard link) is refused (a
// *repoFileError). Whatever had the temporary name is removed first, so a
// planted symlink there is replaced, not written through.
func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return &repoFileError{file: filepath.Base(src), why: "is a symlink, not followed"}
		}
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := checkRegular(filepath.Base(src), fi, -1); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// Finish turns the build's repository into the module's output: it drops
// module-build-macros (build-time only, as MBS keeps it out of the
// destination tag), regenerates repodata, writes modules.yaml with
// data.artifacts.rpms set to every built NEVRA (source RPMs included,
// sorted), and adds it to repodata with modifyrepo_c when available. Last,
// it removes the build's work directories: after success the build tree
// keeps only repo/, logs/, rpmdb/, deps.txt and the module macros.
func (b *Backend) Finish(ctx context.Context, build *runner.Build) (*runner.Result, error) {
	st, err := b.state(build)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(st.logs, "finish.log"))
	if err != nil {
		return nil, fmt.Errorf("local: finish %s: %w", build.NSVC(), err)
	}
	defer logf.Close()

	macrosRPMs, _ := filepath.Glob(filepath.Join(st.repo, buildmacros.PackageName+"-"+buildmacros.PackageVersion+"-*.rpm"))
	for _, f := range macrosRPMs {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("local: finish %s: %w", build.NSVC(), err)
		}
	}
	if _, err := b.createrepo(ctx, st, "finish "+build.NSVC(), logf); err != nil {
		return nil, err
	}

	mmd, err := finalModulemd(build, b.artifacts(st, build))
	if err != nil {
		return nil, fmt.Errorf("local: finish %s: %w", build.NSVC(), err)
	}
	modules := filepath.Join(st.repo, "modules.yaml")
	if err := os.WriteFile(modules, mmd, 0o644); err != nil {
		return nil, fmt.Errorf("local: finish %s: %w", build.NSVC(), err)
	}
	if _, err := exec.LookPath(b.opts.Test.ModifyRepo); err != nil {
		b.log.Warn("local: modules.yaml not added to repodata", "reason", err.Error(), "repo", st.repo)
	} else if _, err := b.tool(ctx, "finish "+build.NSVC()+": add modules.yaml to repodata", b.opts.Test.ModifyRepo, logf,
		"--mdtype=modules", modules, filepath.Join(st.repo, "repodata")); err != nil {
		return nil, err
	}
	// The build succeeded: its tree keeps only logs and results. Work
	// directories (sources, rpmbuild trees) are what AdoptBatch needs to
	// resume an unfinished build, so they go only now.
	if err := os.RemoveAll(st.work); err != nil {
		return nil, fmt.Errorf("local: finish %s: remove work directories: %w", build.NSVC(), err)
	}
	b.log.Info("local: build finished", "nsvc", build.NSVC(), "repo", st.repo)
	return &runner.Result{Dir: st.repo, Modulemd: mmd, Location: st.repo}, nil
}

// artifacts returns the sorted NEVRAs of every component this backend built
// for the build, plus those the runner recorded as complete or reused,
// module-build-macros excluded.
func (b *Backend) artifacts(st *buildState, build *runner.Build) []string {
	set := map[string]bool{}
	st.mu.Lock()
	for key, nevras := range st.rpms {
		if key == runner.MacrosComponent {
			continue
		}
		for _, n := range nevras {
			set[n] = true
		}
	}
	st.mu.Unlock()
	for _, batch := range build.Batches {
		for _, c := range batch.Components {
			if c.Key == runner.MacrosComponent || (c.State != runner.ComponentComplete && c.State != runner.ComponentReused) {
				continue
			}
			for _, n := range c.RPMs {
				set[n] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// finalModulemd returns the build's modulemd (Build.Modulemd.Marshal, or a
// minimal document when Modulemd is nil) with data.artifacts.rpms replaced
// by nevras. Only the YAML tree is edited, so every other field stays as
// the modulemd package wrote it.
func finalModulemd(build *runner.Build, nevras []string) ([]byte, error) {
	root, err := modulemdNode(build)
	if err != nil {
		return nil, err
	}
	data := mappingValue(root, "data")
	if data == nil || data.Kind != yaml.MappingNode {
		return nil, errors.New("modulemd has no data mapping")
	}
	artifacts := mappingValue(data, "artifacts")
	if artifacts == nil || artifacts.Kind != yaml.MappingNode {
		artifacts = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		setMappingValue(data, "artifacts", artifacts)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, n := range nevras {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: n})
	}
	setMappingValue(artifacts, "rpms", seq)

	var out strings.Builder
	out.WriteString("---\n")
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode modulemd: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode modulemd: %w", err)
	}
	out.WriteString("...\n")
	return []byte(out.String()), nil
}

// modulemdNode returns the top mapping of the build's modulemd document.
func modulemdNode(build *runner.Build) (*yaml.Node, error) {
	var src []byte
	if build.Modulemd != nil {
		var err error
		if src, err = build.Modulemd.Marshal(); err != nil {
			return nil, fmt.Errorf("marshal modulemd: %w", err)
		}
	} else {
		var err error
		src, err = yaml.Marshal(minimalModulemd{
			Document: "modulemd",
			Version:  2,
			Data: minimalData{
				Name: build.Name, Stream: build.Stream, Version: build.Version, Context: build.Context,
				Summary:     "Module " + build.NSVC(),
				Description: "Module " + build.NSVC() + " built by rida's local backend.",
			},
		})
		if err != nil {
			return nil, err
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parse modulemd: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("modulemd is not a YAML mapping document")
	}
	return doc.Content[0], nil
}

// minimalModulemd is written when the Build has no Modulemd.
type minimalModulemd struct {
	Document string      `yaml:"document"`
	Version  int         `yaml:"version"`
	Data     minimalData `yaml:"data"`
}

type minimalData struct {
	Name        string `yaml:"name"`
	Stream      string `yaml:"stream"`
	Version     uint64 `yaml:"version"`
	Context     string `yaml:"context"`
	Summary     string `yaml:"summary"`
	Description string `yaml:"description"`
}

// buildoptsMacros returns data.buildopts.rpms.macros of the build's
// modulemd, or "".
func buildoptsMacros(build *runner.Build) (string, error) {
	if build.Modulemd == nil {
		return "", nil
	}
	src, err := build.Modulemd.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal modulemd: %w", err)
	}
	return buildoptsMacrosFromYAML(src)
}

func buildoptsMacrosFromYAML(src []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return "", fmt.Errorf("parse modulemd: %w", err)
	}
	if len(doc.Content) == 0 {
		return "", nil
	}
	n := doc.Content[0]
	for _, k := range []string{"data", "buildopts", "rpms", "macros"} {
		if n = mappingValue(n, k); n == nil {
			return "", nil
		}
	}
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("modulemd data.buildopts.rpms.macros is not a string")
	}
	return n.Value, nil
}

// mappingValue returns the value node of key in mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setMappingValue replaces or appends key in mapping m.
func setMappingValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}
