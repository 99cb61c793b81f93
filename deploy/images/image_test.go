package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// repoRoot is the repository root seen from this package's directory.
const repoRoot = "../.."

// testMeta is the metadata the tests build images with.
var testMeta = Meta{
	Version:  "1.2.3",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Source:   "https://github.com/bachata-chat/bachata",
	Licenses: "NOASSERTION",
	Created:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	Arch:     runtime.GOARCH,
}

// TestRouterImage builds the router the way `make images` does, writes its
// image tarball, reads it back and checks what a cluster relies on: the
// entrypoint, the non-root user, the labels, and a layer holding only the
// static binary and the CA bundle.
func TestRouterImage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	svc, err := pick([]string{"router"})
	require.NoError(t, err)
	bin := filepath.Join(dir, "router")
	require.NoError(t, buildBinary(t.Context(), repoRoot, "router", runtime.GOARCH, bin))

	ref, err := name.NewTag("ghcr.io/bachata-chat/bachata-router:1.2.3")
	require.NoError(t, err)
	path := filepath.Join(dir, "router.tar")
	digest, err := buildImage(svc[0], bin, testMeta, ref, path)
	require.NoError(t, err)

	// As containerd and skopeo read it: the OCI layout, ref in the index.
	idx, err := layout.ImageIndexFromPath(untar(t, path))
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	desc := im.Manifests[0]
	assert.Equal(t, digest, desc.Digest.String(), "the archive holds the image whose digest was reported")
	assert.Equal(t, types.OCIManifestSchema1, desc.MediaType)
	assert.Equal(t, "ghcr.io/bachata-chat/bachata-router:1.2.3", desc.Annotations["io.containerd.image.name"])
	assert.Equal(t, "1.2.3", desc.Annotations["org.opencontainers.image.ref.name"])
	img, err := idx.Image(desc.Digest)
	require.NoError(t, err)

	// As docker load reads it: manifest.json, into the same blobs.
	dimg, err := tarball.ImageFromPath(path, &ref)
	require.NoError(t, err)
	cfgName, err := img.ConfigName()
	require.NoError(t, err)
	dcfgName, err := dimg.ConfigName()
	require.NoError(t, err)
	assert.Equal(t, cfgName, dcfgName, "docker load sees the same image config")

	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cfg.OS)
	assert.Equal(t, runtime.GOARCH, cfg.Architecture)
	assert.Equal(t, testMeta.Created, cfg.Created.UTC())
	assert.Equal(t, []string{"/router"}, cfg.Config.Entrypoint)
	assert.Empty(t, cfg.Config.Cmd)
	assert.Equal(t, "65532:65532", cfg.Config.User)
	assert.Equal(t, "/", cfg.Config.WorkingDir)
	assert.Equal(t, map[string]struct{}{"9081/tcp": {}, "8181/tcp": {}}, cfg.Config.ExposedPorts)
	assert.Equal(t, map[string]string{
		"org.opencontainers.image.title":       "bachata-router",
		"org.opencontainers.image.description": "Bachata router: validation and the route chain",
		"org.opencontainers.image.source":      "https://github.com/bachata-chat/bachata",
		"org.opencontainers.image.version":     "1.2.3",
		"org.opencontainers.image.revision":    "0123456789abcdef0123456789abcdef01234567",
		"org.opencontainers.image.licenses":    "NOASSERTION",
		"org.opencontainers.image.created":     "2026-01-02T03:04:05Z",
	}, cfg.Config.Labels)

	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1, "no base image: one layer")
	lmt, err := layers[0].MediaType()
	require.NoError(t, err)
	assert.Equal(t, types.OCILayer, lmt)

	files := readLayer(t, layers[0])
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"etc/", "etc/ssl/", "etc/ssl/certs/", CAPath, "router"}, names)
	for n, f := range files {
		assert.Zero(t, f.hdr.Uid, "%s is owned by root, so the user cannot change it", n)
		assert.Zero(t, f.hdr.Gid, n)
		assert.True(t, f.hdr.ModTime.Equal(testMeta.Created), "%s has the image's time", n)
	}
	assert.Equal(t, int64(0o555), files["router"].hdr.Mode)
	assert.Equal(t, int64(0o444), files[CAPath].hdr.Mode)

	built, err := os.ReadFile(bin)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(built, files["router"].data), "the layer holds the binary as built")
	ef, err := elf.NewFile(bytes.NewReader(files["router"].data))
	require.NoError(t, err)
	for _, p := range ef.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no program interpreter")
	}
	libs, err := ef.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(files[CAPath].data))
	assert.Greater(t, bytes.Count(files[CAPath].data, []byte("BEGIN CERTIFICATE")), 100, "the CA bundle holds Mozilla's roots")
}

// TestImageReproducible: the same binary and metadata give the same image,
// digest for digest, and the same archive, byte for byte; a different
// revision gives a different image.
func TestImageReproducible(t *testing.T) {
	t.Parallel()
	binary := staticBinary(t)
	digest := func(m Meta) v1.Hash {
		img, err := Image(Services[0], binary, m)
		require.NoError(t, err)
		d, err := img.Digest()
		require.NoError(t, err)
		return d
	}
	assert.Equal(t, digest(testMeta), digest(testMeta))

	img, err := Image(Services[0], binary, testMeta)
	require.NoError(t, err)
	ref, err := name.NewTag("example.com/hello:1")
	require.NoError(t, err)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	require.NoError(t, writeArchive(a, ref, img, testMeta.Created))
	require.NoError(t, writeArchive(b, ref, img, testMeta.Created))
	ab, err := os.ReadFile(a)
	require.NoError(t, err)
	bb, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(ab, bb), "equal images give equal archives")

	other := testMeta
	other.Revision = "fedcba9876543210fedcba9876543210fedcba98"
	assert.NotEqual(t, digest(testMeta), digest(other))
}

// TestImageRefusesWhatCannotRun: a dynamically linked binary, one for
// another architecture and something that is not ELF never become images.
func TestImageRefusesWhatCannotRun(t *testing.T) {
	t.Parallel()
	binary := staticBinary(t)
	otherArch := "arm64"
	if runtime.GOARCH == "arm64" {
		otherArch = "amd64"
	}
	tests := []struct {
		name    string
		binary  func(t *testing.T) []byte
		arch    string
		wantErr error
	}{
		{name: "dynamic", binary: dynamicBinary, arch: runtime.GOARCH, wantErr: ErrNotStatic},
		{name: "other architecture", binary: func(*testing.T) []byte { return binary }, arch: otherArch, wantErr: ErrWrongArch},
		{name: "not ELF", binary: func(*testing.T) []byte { return []byte("#!/bin/sh\necho hi\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := testMeta
			m.Arch = tt.arch
			_, err := Image(Services[0], tt.binary(t), m)
			require.Error(t, err)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// TestPick: no name means every service; an unknown one is an error.
func TestPick(t *testing.T) {
	t.Parallel()
	all, err := pick(nil)
	require.NoError(t, err)
	assert.Len(t, all, 4)
	_, err = pick([]string{"router", "gatway"})
	assert.ErrorIs(t, err, ErrUnknownService)
}

// staticBinary returns a small static ELF executable for this machine's
// architecture, built from testdata/hello.
func staticBinary(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-buildvcs=false", "-o", out, "./testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	binary, err := os.ReadFile(out)
	require.NoError(t, err)
	return binary
}

// dynamicBinary returns this machine's /bin/sh when it is dynamically
// linked (as on any glibc system), or skips the test.
func dynamicBinary(t *testing.T) []byte {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to use as a dynamically linked binary")
	}
	binary, err := os.ReadFile(sh)
	require.NoError(t, err)
	f, err := elf.NewFile(bytes.NewReader(binary))
	require.NoError(t, err)
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return binary
		}
	}
	t.Skip(sh + " is statically linked")
	return nil
}

// untar extracts the archive at path into a new directory and returns it.
func untar(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		require.NoError(t, err)
		dst := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		require.True(t, strings.HasPrefix(dst, dir+string(filepath.Separator)), "entry %q stays inside", hdr.Name)
		if hdr.Typeflag == tar.TypeDir {
			require.NoError(t, os.MkdirAll(dst, 0o755))
			continue
		}
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, data, 0o644))
	}
}

// layerFile is one entry of a layer.
type layerFile struct {
	hdr  *tar.Header
	data []byte
}

// readLayer returns every entry of l by name.
func readLayer(t *testing.T, l v1.Layer) map[string]layerFile {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NotContains(t, files, hdr.Name, "duplicate entry")
		files[hdr.Name] = layerFile{hdr: hdr, data: data}
	}
}
