// Command images builds the container image of each Bachata service without
// a Docker daemon: it compiles the service as a static Linux binary
// (CGO_ENABLED=0) and wraps it, with a CA bundle, in a one-layer OCI image
// with no base, written as an OCI image layout in a tar file
// (.cache/images/<service>.tar by default) that `docker load`, `kind load
// image-archive`, `ctr import`, `skopeo copy oci-archive:` and `crane push`
// all take (see writeArchive).
//
// Usage, from the repository root (make images does this):
//
//	go run ./deploy/images [flags] [service ...]
//
// With no service named, it builds all four.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrUnknownService is returned for a service name that is not one of
// Services.
var ErrUnknownService = errors.New("unknown service")

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

// run is main without the exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet(filepath.Base(args[0]), flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "repository root: the directory holding go.work")
	out := fs.String("out", ".cache/images", "directory the <service>.tar files are written to")
	registry := fs.String("registry", "ghcr.io/bachata-chat", "registry and namespace of the image names, bachata-<service> within it")
	version := fs.String("version", "dev", "image tag and org.opencontainers.image.version")
	revision := fs.String("revision", "", "org.opencontainers.image.revision: the commit")
	created := fs.String("created", "", "image creation time, RFC 3339 (default the Unix epoch, for reproducible images)")
	source := fs.String("source", "https://github.com/bachata-chat/bachata", "org.opencontainers.image.source")
	licenses := fs.String("licenses", "NOASSERTION", "org.opencontainers.image.licenses, an SPDX expression")
	arch := fs.String("arch", runtime.GOARCH, "GOARCH of the binaries and images")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	m := Meta{Version: *version, Revision: *revision, Source: *source, Licenses: *licenses, Created: time.Unix(0, 0).UTC(), Arch: *arch}
	if *created != "" {
		t, err := time.Parse(time.RFC3339, *created)
		if err != nil {
			return fmt.Errorf("-created: %w", err)
		}
		m.Created = t.UTC()
	}
	svcs, err := pick(fs.Args())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o750); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	tmp, err := os.MkdirTemp("", "bachata-images-")
	if err != nil {
		return fmt.Errorf("temp directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	for _, svc := range svcs {
		ref, err := name.NewTag(fmt.Sprintf("%s/bachata-%s:%s", *registry, svc.Name, m.Version))
		if err != nil {
			return fmt.Errorf("%s: image name: %w", svc.Name, err)
		}
		bin := filepath.Join(tmp, svc.Name)
		if err := buildBinary(ctx, *root, svc.Name, m.Arch, bin); err != nil {
			return err
		}
		path := filepath.Join(*out, svc.Name+".tar")
		digest, err := buildImage(svc, bin, m, ref, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", path, ref, digest)
	}
	return nil
}

// pick returns the services named, or all of them when none is.
func pick(names []string) ([]Service, error) {
	if len(names) == 0 {
		return Services, nil
	}
	var svcs []Service
	for _, n := range names {
		found := false
		for _, s := range Services {
			if s.Name == n {
				svcs = append(svcs, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w %q", ErrUnknownService, n)
		}
	}
	return svcs, nil
}

// buildBinary compiles ./services/<svc>/cmd/<svc> under root as a static
// Linux binary for arch: no cgo, paths trimmed and no VCS stamp (the commit
// is in the image's labels), so the same source gives the same bytes.
func buildBinary(ctx context.Context, root, svc, arch, out string) error {
	//nolint:gosec // svc is one of Services, out a path of ours
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w",
		"-o", out, "./services/"+svc+"/cmd/"+svc)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: go build: %w\n%s", svc, err, b)
	}
	return nil
}

// buildImage turns the binary at bin into svc's image and writes it to
// path as an image archive naming ref, returning the image's digest. The
// file is replaced only once complete.
func buildImage(svc Service, bin string, m Meta, ref name.Tag, path string) (string, error) {
	binary, err := os.ReadFile(bin) //nolint:gosec // the binary buildBinary just wrote
	if err != nil {
		return "", fmt.Errorf("%s: %w", svc.Name, err)
	}
	img, err := Image(svc, binary, m)
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("%s: digest: %w", svc.Name, err)
	}
	if err := writeArchive(path, ref, img, m.Created); err != nil {
		return "", fmt.Errorf("%s: write %s: %w", svc.Name, path, err)
	}
	return digest.String(), nil
}
