package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rida-build/rida/modulemd"
	"github.com/rida-build/rida/state"
)

// SRPMMode says how POST module-builds takes the srpms of a scratch build
// (Options.SRPMs).
type SRPMMode int

const (
	// SRPMsRefused refuses srpms (403): the server builds components from
	// their repositories only.
	SRPMsRefused SRPMMode = iota
	// SRPMsUploaded takes SRPM files sent to rida itself as
	// multipart/form-data file parts named "srpms" and stores them under
	// Options.UploadDir (the local backend builds them).
	SRPMsUploaded
	// SRPMsKoji takes srpms as Koji upload paths ("cli-build/…/x.src.rpm",
	// the client uploaded the files to the hub), as MBS does.
	SRPMsKoji
)

// DefaultMaxUpload is Options.MaxUpload's default: the largest
// multipart/form-data submission, 25 MiB (webhook.DefaultMaxBody's size).
const DefaultMaxUpload int64 = 25 << 20

// maxFormField caps one form field of a multipart submission.
const maxFormField = 1 << 20

// ModulemdReader reads a module's modulemd file from its repository at a
// commit. An adapter over runner.SCMModules implements it in rida serve.
type ModulemdReader interface {
	ReadModulemd(ctx context.Context, repoURL, name, commit string) ([]byte, error)
}

// submission is a POST module-builds body: its parameters as JSON values
// (form fields converted), the yaml file part and the stored SRPM files.
type submission struct {
	body map[string]json.RawMessage
	// yamlName is the yaml file part's file name (basename), yaml its
	// content; hasYAML says the part was sent.
	yamlName string
	yaml     []byte
	hasYAML  bool
	// files are the SRPM file parts, stored under uploadDir (an absolute
	// directory this submission created; "" when none was).
	files     []state.SRPM
	uploadDir string
	multipart bool
}

// discard removes what the submission stored (it was refused).
func (sub *submission) discard() {
	if sub != nil && sub.uploadDir != "" {
		_ = os.RemoveAll(sub.uploadDir)
	}
}

// readSubmission reads a POST module-builds body: JSON (with or without
// Content-Type), or multipart/form-data with form fields, a file part
// "yaml" and, with SRPMsUploaded, file parts "srpms". SRPM files are
// written under a new directory of Options.UploadDir as they arrive; the
// caller must discard the submission when it refuses it.
func (s *Server) readSubmission(w http.ResponseWriter, r *http.Request) (*submission, error) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		body, err := decodeBody(r)
		if err != nil {
			return nil, err
		}
		return &submission{body: body}, nil
	}
	if params["boundary"] == "" {
		return nil, errorf(http.StatusBadRequest, "the multipart/form-data body has no boundary parameter")
	}
	sub := &submission{body: map[string]json.RawMessage{}, multipart: true}
	err := s.readParts(multipart.NewReader(http.MaxBytesReader(w, r.Body, s.opts.MaxUpload), params["boundary"]), sub)
	if err != nil {
		sub.discard()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "the submission is larger than the %d bytes allowed", s.opts.MaxUpload)
		}
		return nil, err
	}
	return sub, nil
}

func (s *Server) readParts(mr *multipart.Reader, sub *submission) error {
	var srpmFields []string
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return errorf(http.StatusBadRequest, "the multipart/form-data body cannot be read: %v", err)
		}
		name := part.FormName()
		if part.FileName() != "" {
			if err := s.readFilePart(part, name, sub); err != nil {
				return err
			}
			continue
		}
		val, err := io.ReadAll(io.LimitReader(part, maxFormField+1))
		if err != nil {
			return readError(err)
		}
		if len(val) > maxFormField {
			return errorf(http.StatusBadRequest, "form field %q is larger than %d bytes", name, maxFormField)
		}
		if name == "srpms" {
			srpmFields = append(srpmFields, string(val))
			continue
		}
		if seen[name] {
			return errorf(http.StatusBadRequest, "form field %q is given more than once", name)
		}
		seen[name] = true
		raw, err := formValue(name, string(val))
		if err != nil {
			return err
		}
		sub.body[name] = raw
	}
	if srpmFields != nil {
		raw, _ := json.Marshal(srpmFields)
		sub.body["srpms"] = raw
	}
	return nil
}

// readError keeps a body-size error for readSubmission, else says the body
// could not be read.
func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errorf(http.StatusBadRequest, "the multipart/form-data body cannot be read: %v", err)
}

// formValue turns a form field into the JSON value the JSON body would
// carry: scratch a boolean, the overrides their JSON object,
// reuse_components_from a number when it is one, anything else a string.
func formValue(name, v string) (json.RawMessage, error) {
	switch name {
	case "scratch":
		switch strings.ToLower(v) {
		case "true", "1":
			return json.RawMessage("true"), nil
		case "false", "0":
			return json.RawMessage("false"), nil
		}
		return nil, errorf(http.StatusBadRequest, "scratch must be true or false")
	case "buildrequire_overrides", "require_overrides":
		if !json.Valid([]byte(v)) {
			return nil, errorf(http.StatusBadRequest, "The %q parameter must be an object whose values are lists of streams, e.g. {\"platform\": [\"el9\"]}", name)
		}
		return json.RawMessage(v), nil
	case "reuse_components_from":
		if _, err := strconv.ParseUint(v, 10, 64); err == nil {
			return json.RawMessage(v), nil
		}
	}
	raw, _ := json.Marshal(v)
	return raw, nil
}

// readFilePart takes the file part "yaml" (the modulemd) or "srpms" (an
// SRPM, stored at once when the server takes uploaded SRPMs).
func (s *Server) readFilePart(part *multipart.Part, name string, sub *submission) error {
	switch name {
	case "yaml":
		if sub.hasYAML {
			return errorf(http.StatusBadRequest, "the file part \"yaml\" is given more than once")
		}
		data, err := io.ReadAll(io.LimitReader(part, modulemd.MaxDocumentSize+1))
		if err != nil {
			return readError(err)
		}
		if len(data) > modulemd.MaxDocumentSize {
			return errorf(http.StatusBadRequest, "the yaml file is larger than %d bytes", modulemd.MaxDocumentSize)
		}
		sub.yamlName, sub.yaml, sub.hasYAML = baseName(part.FileName()), data, true
		return nil
	case "srpms":
		switch s.opts.SRPMs {
		case SRPMsKoji:
			return errorf(http.StatusBadRequest, "srpms: this server builds in Koji: upload the SRPM to the Koji hub and give its path (cli-build/…/name-version-release.src.rpm), not the file")
		case SRPMsRefused:
			return errorf(http.StatusForbidden, "Uploaded SRPMs (parameter \"srpms\") are not supported on this server; build the components from their repositories")
		}
		return s.storeSRPM(part, sub)
	}
	return errorf(http.StatusBadRequest, "The request contains an unexpected file part %q; only \"yaml\" and \"srpms\" are files", name)
}

// baseName is the last element of a client's file name (either slash).
func baseName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// maxSRPMName bounds an uploaded SRPM's file name.
const maxSRPMName = 200

// srpmFileName checks the file name a client gave an uploaded SRPM: only
// its last element counts ("../../x.src.rpm" is "x.src.rpm"), which must
// be name-version-release.src.rpm in letters, digits and ._+~^- (no
// leading dot or dash). It returns the name and the package name.
func srpmFileName(raw string) (file, pkg string, err error) {
	file = baseName(raw)
	if file == "" || len(file) > maxSRPMName || file[0] == '.' || file[0] == '-' || strings.Trim(file, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+~^-") != "" {
		return "", "", errorf(http.StatusBadRequest, "srpms: the file name %q is not usable: it must be name-version-release.src.rpm in letters, digits and ._+~^-", raw)
	}
	pkg, err = srpmPackage(file)
	if err != nil {
		return "", "", err
	}
	return file, pkg, nil
}

// srpmPackage is the package name in an SRPM's file name,
// name-version-release.src.rpm.
func srpmPackage(file string) (string, error) {
	nvr, ok := strings.CutSuffix(file, ".src.rpm")
	i := strings.LastIndex(nvr, "-")
	j := -1
	if i > 0 {
		j = strings.LastIndex(nvr[:i], "-")
	}
	if !ok || j <= 0 || i == len(nvr)-1 || i-j == 1 {
		return "", errorf(http.StatusBadRequest, "srpms: %q is not named name-version-release.src.rpm", file)
	}
	return nvr[:j], nil
}

// storeSRPM writes an SRPM file part into the submission's directory under
// Options.UploadDir: a new directory with a random name, the file created
// there with O_EXCL through an os.Root (no symlink or ".." leads out of
// UploadDir), synced before the submission is recorded.
func (s *Server) storeSRPM(part *multipart.Part, sub *submission) error {
	file, pkg, err := srpmFileName(part.FileName())
	if err != nil {
		return err
	}
	for _, f := range sub.files {
		if path.Base(f.Path) == file {
			return errorf(http.StatusBadRequest, "srpms: %q is sent twice", file)
		}
	}
	if err := os.MkdirAll(s.opts.UploadDir, 0o750); err != nil {
		return fmt.Errorf("api: create the uploads directory: %w", err)
	}
	root, err := os.OpenRoot(s.opts.UploadDir)
	if err != nil {
		return fmt.Errorf("api: open the uploads directory: %w", err)
	}
	defer root.Close()
	if sub.uploadDir == "" {
		var id [8]byte
		_, _ = rand.Read(id[:])
		dir := hex.EncodeToString(id[:])
		if err := root.Mkdir(dir, 0o750); err != nil {
			return fmt.Errorf("api: create an upload directory: %w", err)
		}
		sub.uploadDir = filepath.Join(s.opts.UploadDir, dir)
	}
	rel := path.Base(sub.uploadDir) + "/" + file
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("api: store %s: %w", rel, err)
	}
	if _, err := io.Copy(f, part); err != nil {
		f.Close()
		return readError(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("api: store %s: %w", rel, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("api: store %s: %w", rel, err)
	}
	sub.files = append(sub.files, state.SRPM{Package: pkg, Path: rel})
	return nil
}

// syncUploads makes the submission's directory entries durable before
// the request that names them is recorded.
func (sub *submission) syncUploads() error {
	if sub.uploadDir == "" {
		return nil
	}
	for _, d := range []string{sub.uploadDir, filepath.Dir(sub.uploadDir)} {
		f, err := os.Open(d)
		if err != nil {
			return fmt.Errorf("api: sync %s: %w", d, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("api: sync %s: %w", d, err)
		}
	}
	return nil
}

// kojiUploadPath checks an srpms entry for the Koji backend: a clean
// relative path under cli-build/ naming a .src.rpm. It returns the package
// names it may stand for, in order of preference: the whole stem (MBS
// reads the package name of a cli-build/ path as the file name without
// .src.rpm) and the name of a name-version-release.src.rpm.
func kojiUploadPath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "cli-build/") || !strings.HasSuffix(p, ".src.rpm") || path.Clean(p) != p ||
		strings.ContainsAny(p, "\\\x00") || strings.Contains(p, "/../") || strings.HasSuffix(path.Dir(p), "/..") {
		return nil, errorf(http.StatusBadRequest, "srpms: %q is not a Koji upload path: it must be a clean relative path cli-build/…/name-version-release.src.rpm", p)
	}
	file := path.Base(p)
	names := []string{strings.TrimSuffix(file, ".src.rpm")}
	if pkg, err := srpmPackage(file); err == nil {
		names = append(names, pkg)
	}
	return names, nil
}
