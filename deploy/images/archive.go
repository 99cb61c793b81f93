package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// writeArchive writes img to path as an OCI image layout in a tar file
// (oci-layout, index.json, blobs/sha256/…), plus the manifest.json of
// `docker save`, which points into the same blobs. The manifest keeps its
// OCI media types, and the one file loads everywhere: containerd (`ctr
// import`, `kind load image-archive`), `docker load` (any version), `skopeo
// copy oci-archive:` and `crane push`. The index names the image ref in the
// annotations containerd and the OCI spec read. Entries are sorted and
// carry mtime, so equal images give equal files.
func writeArchive(path string, ref name.Tag, img v1.Image, mtime time.Time) error {
	dir, err := os.MkdirTemp("", "bachata-oci-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          ref.Name(),
		"org.opencontainers.image.ref.name": ref.TagStr(),
	})); err != nil {
		return fmt.Errorf("oci layout: %w", err)
	}
	if err := writeDockerManifest(dir, ref, img); err != nil {
		return err
	}
	partial := path + ".partial"
	if err := tarDir(dir, partial, mtime); err != nil {
		_ = os.Remove(partial)
		return err
	}
	return os.Rename(partial, path)
}

// writeDockerManifest writes the manifest.json of `docker save` into the
// layout directory dir.
func writeDockerManifest(dir string, ref name.Tag, img v1.Image) error {
	cfg, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blob(cfg), RepoTags: []string{ref.String()}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		entry.Layers = append(entry.Layers, blob(d))
	}
	b, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o600)
}

// tarDir writes the files under dir, sorted by path, to a tar file at out.
func tarDir(dir, out string, mtime time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	f, err := os.Create(out) //nolint:gosec // out is the operator's -out directory
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, p := range paths {
		if err := tarEntry(tw, dir, p, mtime); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// tarEntry adds the file or directory p, named relative to dir.
func tarEntry(tw *tar.Writer, dir, p string, mtime time.Time) error {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
	if st.IsDir() {
		h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		return tw.WriteHeader(h)
	}
	h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	src, err := os.Open(p) //nolint:gosec // a file of the layout just written
	if err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	if cerr := src.Close(); err == nil {
		err = cerr
	}
	return err
}
