// Package charttest checks the Helm chart in charts/bachata without a
// cluster. Its tests run the pinned helm (make test installs it) to lint
// the chart and render it under every charts/bachata/ci/*-values.yaml,
// decode every rendered object strictly into the Kubernetes API types (an
// unknown or misspelt field fails), and hold the objects to the policy a
// production cluster expects: resources, probes on /healthz and /readyz,
// non-root read-only containers with no capabilities, Secrets by
// reference, headless Services for gRPC, a grace period longer than each
// service's drain, and environment variables the services actually read.
//
// The package has no code outside its tests.
package charttest
