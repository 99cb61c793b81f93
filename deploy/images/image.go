package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// User is the numeric user and group every image runs as: the same as the
// chart's podSecurityContext (65532, "nonroot" in distroless images). Numeric,
// so the image needs no /etc/passwd and Kubernetes can verify runAsNonRoot.
const User = "65532:65532"

// CAPath is where the images keep the CA bundle: the first file Go's
// crypto/x509 reads on Linux.
const CAPath = "etc/ssl/certs/ca-certificates.crt"

// ErrNotStatic is returned for a binary that needs a dynamic loader or
// shared libraries, which an image with no base does not have.
var ErrNotStatic = errors.New("binary is not statically linked")

// ErrWrongArch is returned for a binary built for another architecture than
// the image's.
var ErrWrongArch = errors.New("binary architecture does not match the image")

// Service is one Bachata service: its name (binary, entrypoint and image
// name), a line for the description label, and the TCP ports it listens on
// by default.
type Service struct {
	Name        string
	Description string
	Ports       []int
}

// Services are the four services, as in services/<name>/cmd/<name>.
var Services = []Service{
	{Name: "gateway", Description: "Bachata gateway: WebSocket termination, auth, sessions", Ports: []int{8080, 8081}},
	{Name: "router", Description: "Bachata router: validation and the route chain", Ports: []int{9081, 8181}},
	{Name: "delivery", Description: "Bachata delivery: per-device reliable queues in Redis", Ports: []int{9082, 8182}},
	{Name: "presence", Description: "Bachata presence: online devices, gateway leases", Ports: []int{9083, 8183}},
}

// Meta is what every image carries besides its binary.
type Meta struct {
	// Version, Revision, Source and Licenses fill the
	// org.opencontainers.image.* labels of the same names.
	Version  string
	Revision string
	Source   string
	Licenses string
	// Created is the image's creation time and the time of every file in
	// its layer; a fixed time (the commit's) makes the image reproducible.
	Created time.Time
	// Arch is the GOARCH of the binary and the image.
	Arch string
}

// Labels returns the OCI annotations of svc's image.
func (m Meta) Labels(svc Service) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "bachata-" + svc.Name,
		"org.opencontainers.image.description": svc.Description,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.licenses":    m.Licenses,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
}

// Image assembles svc's image from its binary, with no base image: one
// layer holding the binary at /<name> and the CA bundle, nothing else (no
// shell, no libc, no /etc/passwd). The CA bundle is Mozilla's, from
// golang.org/x/crypto/x509roots/fallback, so the image is built from Go
// modules alone; the services need it for TLS to what runs outside the
// cluster (a JWKS URL, rediss://, tls:// NATS, an OTLP collector). The
// binary must be statically linked for m.Arch.
func Image(svc Service, binary []byte, m Meta) (v1.Image, error) {
	if err := CheckStatic(binary, m.Arch); err != nil {
		return nil, fmt.Errorf("%s: %w", svc.Name, err)
	}
	layerTar, err := layer(svc.Name, binary, CABundle(), m.Created)
	if err != nil {
		return nil, fmt.Errorf("%s: layer: %w", svc.Name, err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("%s: layer: %w", svc.Name, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:   v1.Time{Time: m.Created},
			CreatedBy: "deploy/images: /" + svc.Name + " and " + "/" + CAPath,
			Comment:   "static Go binary, no base image",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: append layer: %w", svc.Name, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", svc.Name, err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = m.Arch
	cfg.Created = v1.Time{Time: m.Created}
	ports := make(map[string]struct{}, len(svc.Ports))
	for _, p := range svc.Ports {
		ports[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	cfg.Config = v1.Config{
		Entrypoint:   []string{"/" + svc.Name},
		User:         User,
		WorkingDir:   "/",
		Labels:       m.Labels(svc),
		ExposedPorts: ports,
		StopSignal:   "SIGTERM",
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: set config: %w", svc.Name, err)
	}
	return img, nil
}

// CheckStatic returns an error unless binary is an ELF executable for the
// Go architecture arch with no program interpreter and no shared library
// dependencies.
func CheckStatic(binary []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return fmt.Errorf("read ELF: %w", err)
	}
	defer func() { _ = f.Close() }()
	want, ok := map[string]elf.Machine{
		"amd64":   elf.EM_X86_64,
		"arm64":   elf.EM_AARCH64,
		"riscv64": elf.EM_RISCV,
		"ppc64le": elf.EM_PPC64,
		"s390x":   elf.EM_S390,
	}[arch]
	if !ok {
		return fmt.Errorf("%w: unsupported architecture %q", ErrWrongArch, arch)
	}
	if f.Machine != want {
		return fmt.Errorf("%w: %s, want %s", ErrWrongArch, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: it has a program interpreter", ErrNotStatic)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("read ELF dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%w: it needs %v", ErrNotStatic, libs)
	}
	return nil
}

// CABundle returns Mozilla's root certificates as PEM. Roots the bundle
// constrains (distrusted after a date) are left out: a PEM file cannot
// carry the constraint, and leaving them out errs on the side of refusing.
func CABundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}

// layer returns the image's single layer as an uncompressed tar: the
// directories of the CA bundle, the bundle, and the binary, owned by root
// and read-only, every time set to mtime.
func layer(name string, binary, caBundle []byte, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, dir := range []string{"etc/", "etc/ssl/", "etc/ssl/certs/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{name: CAPath, mode: 0o444, data: caBundle},
		{name: name, mode: 0o555, data: binary},
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
