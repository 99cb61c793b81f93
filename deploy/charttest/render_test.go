package charttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	// chartDir is the chart, seen from this package's directory.
	chartDir = "../../charts/bachata"
	// release and namespace the chart is rendered as; the full name of
	// the objects is then "chat-bachata".
	release   = "chat"
	namespace = "chat"
	fullname  = "chat-bachata"
	// kubeVersion is the oldest Kubernetes the chart is rendered for, as
	// Chart.yaml's kubeVersion allows.
	kubeVersion = "1.25.0"
)

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart uses. It is a CRD, with no Go type
// in k8s.io/api: decoding strictly into this struct fails on any field the
// chart sets that is not listed here, so a new field is added on purpose
// after checking it in the CRD.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string `json:"jobLabel,omitempty"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// newObject returns an empty object of the Go type for apiVersion and
// kind, or nil for a kind the chart is not expected to render.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 Ingress":
		return &networkingv1.Ingress{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}
	}
	return nil
}

// rendered is the chart's output, decoded.
type rendered struct {
	Deployments     map[string]*appsv1.Deployment
	Services        map[string]*corev1.Service
	ConfigMaps      map[string]*corev1.ConfigMap
	Secrets         map[string]*corev1.Secret
	ServiceAccounts map[string]*corev1.ServiceAccount
	HPAs            map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs            map[string]*policyv1.PodDisruptionBudget
	Ingresses       map[string]*networkingv1.Ingress
	ServiceMonitors map[string]*serviceMonitor
	// Kinds counts the objects of each kind.
	Kinds map[string]int
}

// decode splits helm's multi-document YAML and decodes every document
// strictly into its API type (decodeStrict): an unknown or misspelt field,
// a duplicate key, a value of the wrong type or an invalid quantity is an
// error, and so is a kind the test does not know.
func decode(manifest []byte) (*rendered, error) {
	r := &rendered{
		Deployments: map[string]*appsv1.Deployment{}, Services: map[string]*corev1.Service{},
		ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{},
		ServiceAccounts: map[string]*corev1.ServiceAccount{}, HPAs: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, Ingresses: map[string]*networkingv1.Ingress{},
		ServiceMonitors: map[string]*serviceMonitor{}, Kinds: map[string]int{},
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return r, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split documents: %w", err)
		}
		if isEmptyDocument(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("read kind: %w\n%s", err, doc)
		}
		obj := newObject(tm.APIVersion, tm.Kind)
		if obj == nil {
			return nil, fmt.Errorf("unexpected kind %s %s: add it to newObject and the policy checks", tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", tm.Kind, err, doc)
		}
		if err := r.add(tm.Kind, obj); err != nil {
			return nil, err
		}
	}
}

// decodeStrict decodes one YAML document into obj as the API server does
// with fieldValidation=Strict: field names match case-sensitively, and an
// unknown field or a duplicate key is an error naming its path (e.g.
// "spec.template.spec.containers[0].readynessProbe").
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// add files obj under its kind and name; two objects of one kind and name
// are an error.
func (r *rendered) add(kind string, obj any) error {
	name := obj.(metav1.Object).GetName()
	var dup bool
	switch o := obj.(type) {
	case *appsv1.Deployment:
		_, dup = r.Deployments[name]
		r.Deployments[name] = o
	case *corev1.Service:
		_, dup = r.Services[name]
		r.Services[name] = o
	case *corev1.ConfigMap:
		_, dup = r.ConfigMaps[name]
		r.ConfigMaps[name] = o
	case *corev1.Secret:
		_, dup = r.Secrets[name]
		r.Secrets[name] = o
	case *corev1.ServiceAccount:
		_, dup = r.ServiceAccounts[name]
		r.ServiceAccounts[name] = o
	case *autoscalingv2.HorizontalPodAutoscaler:
		_, dup = r.HPAs[name]
		r.HPAs[name] = o
	case *policyv1.PodDisruptionBudget:
		_, dup = r.PDBs[name]
		r.PDBs[name] = o
	case *networkingv1.Ingress:
		_, dup = r.Ingresses[name]
		r.Ingresses[name] = o
	case *serviceMonitor:
		_, dup = r.ServiceMonitors[name]
		r.ServiceMonitors[name] = o
	}
	if dup {
		return fmt.Errorf("two %s objects named %q", kind, name)
	}
	r.Kinds[kind]++
	return nil
}

// isEmptyDocument reports whether doc holds only comments and blank lines,
// as a template that rendered nothing leaves.
func isEmptyDocument(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// helmBinary returns the helm to run: $HELM, helm on PATH, or the one
// `go install` put in GOPATH/bin. Without one the test is skipped, unless
// CI is set: there it must run.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		h := filepath.Join(dir, "bin", "helm")
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("helm not found: `make test` installs the pinned version (or set HELM)")
	}
	t.Fatal("helm not found and CI is set: the chart must be checked in CI; `make test` installs it")
	return ""
}

// helm runs helm with args and returns its standard output, or its
// combined output as the error.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helmBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// template renders the chart with the given extra helm arguments (-f
// file, --set k=v).
func template(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	return helm(t, append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, args...)...)
}

// render renders and decodes the chart, failing the test on any error.
func render(t *testing.T, args ...string) *rendered {
	t.Helper()
	out, err := template(t, args...)
	require.NoError(t, err)
	r, err := decode(out)
	require.NoError(t, err)
	return r
}
