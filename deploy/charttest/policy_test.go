package charttest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// bachataServices are the four services, by their component label.
var bachataServices = []string{"gateway", "router", "delivery", "presence"}

// requiredVars are the variables each service must be given in a cluster:
// its listen addresses, its peers and the servers it needs (the router's
// default chain has the app route, which needs NATS).
var requiredVars = map[string][]string{
	"gateway":  {"BACHATA_WS_ADDR", "BACHATA_ADMIN_ADDR", "BACHATA_ROUTER_ADDR", "BACHATA_DELIVERY_ADDR", "BACHATA_PRESENCE_ADDR", "NATS_URL", "BACHATA_JWT_SECRET", "BACHATA_SHUTDOWN_TIMEOUT"},
	"router":   {"BACHATA_GRPC_ADDR", "BACHATA_HTTP_ADDR", "BACHATA_DELIVERY_ADDR", "NATS_URL", "BACHATA_SHUTDOWN_TIMEOUT"},
	"delivery": {"BACHATA_GRPC_ADDR", "BACHATA_HTTP_ADDR", "REDIS_URL", "NATS_URL", "BACHATA_SHUTDOWN_TIMEOUT"},
	"presence": {"BACHATA_GRPC_ADDR", "BACHATA_HTTP_ADDR", "REDIS_URL", "NATS_URL", "BACHATA_SHUTDOWN_TIMEOUT"},
}

// listenPorts maps each service's listen-address variables to the
// container port name that must carry the same number.
var listenPorts = map[string]map[string]string{
	"gateway":  {"BACHATA_WS_ADDR": "http", "BACHATA_ADMIN_ADDR": "admin"},
	"router":   {"BACHATA_GRPC_ADDR": "grpc", "BACHATA_HTTP_ADDR": "admin"},
	"delivery": {"BACHATA_GRPC_ADDR": "grpc", "BACHATA_HTTP_ADDR": "admin"},
	"presence": {"BACHATA_GRPC_ADDR": "grpc", "BACHATA_HTTP_ADDR": "admin"},
}

// grpcTargets are the variables holding gRPC targets, with the service
// each must name.
var grpcTargets = map[string]map[string]string{
	"gateway": {"BACHATA_ROUTER_ADDR": "router", "BACHATA_DELIVERY_ADDR": "delivery", "BACHATA_PRESENCE_ADDR": "presence"},
	"router":  {"BACHATA_DELIVERY_ADDR": "delivery"},
}

// sensitiveVar matches variables that hold secrets: they must come from a
// Secret by reference, never be written into a manifest.
var sensitiveVar = regexp.MustCompile(`(SECRET|TOKEN|PASSWORD)$`)

// configVar matches the variable names in a service's config.go.
var configVar = regexp.MustCompile(`"((?:BACHATA|OTEL)_[A-Z0-9_]+|NATS_URL|REDIS_URL)"`)

// serviceVars returns the environment variables svc reads, from the
// string literals of services/<svc>/internal/config/config.go.
func serviceVars(svc string) (map[string]bool, error) {
	src, err := os.ReadFile(filepath.Join("..", "..", "services", svc, "internal", "config", "config.go"))
	if err != nil {
		return nil, err
	}
	vars := map[string]bool{}
	for _, m := range configVar.FindAllStringSubmatch(string(src), -1) {
		vars[m[1]] = true
	}
	if len(vars) == 0 {
		return nil, fmt.Errorf("no variables found in %s's config.go", svc)
	}
	return vars, nil
}

// envVar is a container's variable and where its value comes from.
type envVar struct {
	value     string
	secret    *corev1.SecretKeySelector
	configMap string
	field     bool
}

// policy collects violations of one rendering.
type policy struct {
	r *rendered
	// external are the Secrets the values name that the chart does not
	// create (*.existingSecret).
	external   []string
	violations []string
}

func (p *policy) addf(format string, args ...any) {
	p.violations = append(p.violations, fmt.Sprintf(format, args...))
}

// checkPolicy returns every violation of the policy in r; none is the goal.
func checkPolicy(r *rendered, externalSecrets []string) []string {
	p := &policy{r: r, external: externalSecrets}
	p.names()
	for _, d := range sortedValues(r.Deployments) {
		p.deployment(d)
	}
	p.services()
	p.autoscalers()
	p.disruptionBudgets()
	p.ingresses()
	p.serviceMonitors()
	p.configMaps()
	for _, svc := range bachataServices {
		if p.deploymentOf(svc) == nil {
			p.addf("no Deployment for %s", svc)
		}
	}
	return p.violations
}

// names: object names and label values Kubernetes accepts.
func (p *policy) names() {
	objs := []metav1.Object{}
	for _, o := range p.r.Deployments {
		objs = append(objs, o, &o.Spec.Template.ObjectMeta)
	}
	for _, o := range p.r.Services {
		objs = append(objs, o)
		for _, e := range validation.IsDNS1035Label(o.Name) {
			p.addf("Service %s: %s", o.Name, e)
		}
	}
	for _, o := range p.r.ConfigMaps {
		objs = append(objs, o)
	}
	for _, o := range p.r.Secrets {
		objs = append(objs, o)
	}
	for _, o := range p.r.HPAs {
		objs = append(objs, o)
	}
	for _, o := range p.r.PDBs {
		objs = append(objs, o)
	}
	for _, o := range p.r.Ingresses {
		objs = append(objs, o)
	}
	for _, o := range p.r.ServiceMonitors {
		objs = append(objs, o)
	}
	for _, o := range objs {
		if o.GetName() != "" {
			for _, e := range validation.IsDNS1123Subdomain(o.GetName()) {
				p.addf("name %q: %s", o.GetName(), e)
			}
		}
		for k, v := range o.GetLabels() {
			for _, e := range validation.IsQualifiedName(k) {
				p.addf("%s: label %q: %s", o.GetName(), k, e)
			}
			for _, e := range validation.IsValidLabelValue(v) {
				p.addf("%s: label %s=%q: %s", o.GetName(), k, v, e)
			}
		}
	}
}

// deployment checks one Deployment: its pod, each container, and for the
// Bachata services their configuration.
func (p *policy) deployment(d *appsv1.Deployment) {
	where := "Deployment " + d.Name
	pod := d.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		p.addf("%s: selector does not match its pod template", where)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		p.addf("%s: automountServiceAccountToken must be false (no service calls the API)", where)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		p.addf("%s: uses a host namespace", where)
	}
	if psc := pod.SecurityContext; psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.addf("%s: pod seccompProfile must be RuntimeDefault", where)
	}
	if sa := pod.ServiceAccountName; sa != "" && sa != "default" && p.r.ServiceAccounts[sa] == nil {
		p.addf("%s: ServiceAccount %s is not rendered", where, sa)
	}
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && p.r.ConfigMaps[v.ConfigMap.Name] == nil {
			p.addf("%s: volume %s: ConfigMap %s is not rendered", where, v.Name, v.ConfigMap.Name)
		}
		if v.Secret != nil && !p.secretExists(v.Secret.SecretName, "") {
			p.addf("%s: volume %s: Secret %s is not rendered", where, v.Name, v.Secret.SecretName)
		}
	}
	if len(pod.InitContainers) > 0 {
		p.addf("%s: init containers are not checked by this policy; extend it", where)
	}
	component := d.Spec.Template.Labels["app.kubernetes.io/component"]
	for _, c := range pod.Containers {
		cw := fmt.Sprintf("%s container %s", where, c.Name)
		p.container(cw, pod, c)
		env := p.env(cw, c)
		if slices.Contains(bachataServices, component) {
			p.bachataContainer(cw, component, d, c, env)
		}
	}
}

// container checks what every container must have: an image with a tag,
// resources, probes and a locked-down security context.
func (p *policy) container(where string, pod corev1.PodSpec, c corev1.Container) {
	if i := strings.LastIndex(c.Image, "/"); !strings.Contains(c.Image[i+1:], ":") && !strings.Contains(c.Image, "@sha256:") {
		p.addf("%s: image %q has no tag", where, c.Image)
	} else if strings.HasSuffix(c.Image, ":latest") {
		p.addf("%s: image %q is :latest", where, c.Image)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[res]
		lim, hasLim := c.Resources.Limits[res]
		if !hasReq || req.IsZero() {
			p.addf("%s: no %s request", where, res)
		}
		if !hasLim || lim.IsZero() {
			p.addf("%s: no %s limit", where, res)
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			p.addf("%s: %s request %s exceeds its limit %s", where, res, req.String(), lim.String())
		}
	}
	if c.LivenessProbe == nil {
		p.addf("%s: no liveness probe", where)
	}
	if c.ReadinessProbe == nil {
		p.addf("%s: no readiness probe", where)
	}

	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	nonRoot := psc.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		p.addf("%s: runAsNonRoot must be true", where)
	}
	user := psc.RunAsUser
	if sc.RunAsUser != nil {
		user = sc.RunAsUser
	}
	if user != nil && *user == 0 {
		p.addf("%s: runs as user 0", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.addf("%s: readOnlyRootFilesystem must be true", where)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.addf("%s: allowPrivilegeEscalation must be false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		p.addf("%s: privileged", where)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		p.addf("%s: capabilities must drop ALL", where)
	} else if len(sc.Capabilities.Add) > 0 {
		p.addf("%s: adds capabilities %v", where, sc.Capabilities.Add)
	}
}

// env returns the container's variables, from envFrom ConfigMaps then env
// (which wins), checking every reference on the way.
func (p *policy) env(where string, c corev1.Container) map[string]envVar {
	vars := map[string]envVar{}
	for _, src := range c.EnvFrom {
		switch {
		case src.ConfigMapRef != nil:
			cm := p.r.ConfigMaps[src.ConfigMapRef.Name]
			if cm == nil {
				p.addf("%s: envFrom ConfigMap %s is not rendered", where, src.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				vars[k] = envVar{value: v, configMap: cm.Name}
			}
		case src.SecretRef != nil:
			p.addf("%s: envFrom a whole Secret hides which keys are used; use secretKeyRef", where)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = envVar{value: e.Value}
			if sensitiveVar.MatchString(e.Name) {
				p.addf("%s: %s is written inline; take it from a Secret with secretKeyRef", where, e.Name)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			vars[e.Name] = envVar{secret: ref}
			if !p.secretExists(ref.Name, ref.Key) {
				p.addf("%s: %s: Secret %s key %s is neither rendered nor an existing Secret of the values", where, e.Name, ref.Name, ref.Key)
			}
		case e.ValueFrom.FieldRef != nil:
			vars[e.Name] = envVar{field: true}
		default:
			p.addf("%s: %s: unexpected valueFrom", where, e.Name)
		}
	}
	return vars
}

// secretExists reports whether Secret name (with key, unless empty) is
// rendered, or is one of the values' existing Secrets.
func (p *policy) secretExists(name, key string) bool {
	if slices.Contains(p.external, name) {
		return true
	}
	s := p.r.Secrets[name]
	if s == nil {
		return false
	}
	if key == "" {
		return true
	}
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	return inData || inString
}

// bachataContainer checks one of the four services: probes on its admin
// port, the variables it reads, listen ports, gRPC targets, URLs and the
// grace period.
func (p *policy) bachataContainer(where, svc string, d *appsv1.Deployment, c corev1.Container, env map[string]envVar) {
	for _, pr := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{kind: "liveness", probe: c.LivenessProbe, path: "/healthz"}, {kind: "readiness", probe: c.ReadinessProbe, path: "/readyz"}} {
		if pr.probe == nil {
			continue
		}
		if g := pr.probe.HTTPGet; g == nil || g.Path != pr.path || containerPort(c, g.Port) != containerPort(c, intstr.FromString("admin")) || containerPort(c, g.Port) == 0 {
			p.addf("%s: %s probe must be GET %s on the admin port", where, pr.kind, pr.path)
		}
	}

	known, err := serviceVars(svc)
	if err != nil {
		p.addf("%s: %v", where, err)
		return
	}
	for name := range env {
		if !known[name] && !strings.HasPrefix(name, "OTEL_") && name != "POD_NAME" {
			p.addf("%s: %s is set but %s does not read it (services/%s/internal/config/config.go)", where, name, svc, svc)
		}
	}
	for _, name := range requiredVars[svc] {
		if _, ok := env[name]; !ok {
			p.addf("%s: %s is not set", where, name)
		}
	}
	for name, v := range env {
		if v.configMap != "" && sensitiveVar.MatchString(name) {
			p.addf("%s: %s is in ConfigMap %s; take it from a Secret", where, name, v.configMap)
		}
	}
	for name, port := range listenPorts[svc] {
		v, ok := env[name]
		if !ok {
			continue
		}
		_, num, err := net.SplitHostPort(v.value)
		if n, _ := strconv.Atoi(num); err != nil || n != containerPort(c, intstr.FromString(port)) {
			p.addf("%s: %s=%q does not match container port %s", where, name, v.value, port)
		}
	}
	for name, peer := range grpcTargets[svc] {
		if v, ok := env[name]; ok {
			p.grpcTarget(where, name, v.value, peer)
		}
	}
	for _, name := range []string{"NATS_URL", "REDIS_URL"} {
		if v, ok := env[name]; ok && v.secret == nil {
			p.serverURLs(where, name, v.value)
		}
	}

	shutdown, err := time.ParseDuration(env["BACHATA_SHUTDOWN_TIMEOUT"].value)
	if err != nil {
		p.addf("%s: BACHATA_SHUTDOWN_TIMEOUT: %v", where, err)
		return
	}
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := 30 * time.Second // the Kubernetes default
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= shutdown+preStop {
		p.addf("%s: terminationGracePeriodSeconds %s does not exceed the drain (BACHATA_SHUTDOWN_TIMEOUT %s + preStop %s): the pod would be killed mid-drain", where, grace, shutdown, preStop)
	}
}

// grpcTarget checks that target is dns:/// over peer's headless Service on
// its gRPC port, so the client balances over every pod.
func (p *policy) grpcTarget(where, name, target, peer string) {
	hostport, ok := strings.CutPrefix(target, "dns:///")
	if !ok {
		p.addf("%s: %s=%q: want dns:///<headless service>:<port> for client-side balancing", where, name, target)
		return
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		p.addf("%s: %s=%q: %v", where, name, target, err)
		return
	}
	svcName, ok := strings.CutSuffix(host, "."+namespace+".svc.cluster.local")
	s := p.r.Services[svcName]
	if !ok || s == nil {
		p.addf("%s: %s=%q names no rendered Service", where, name, target)
		return
	}
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		p.addf("%s: %s=%q: Service %s is not headless", where, name, target, s.Name)
	}
	d := p.deploymentOf(peer)
	if d == nil || !selects(s, d) {
		p.addf("%s: %s=%q: Service %s does not select the %s pods", where, name, target, s.Name, peer)
	}
	n, _ := strconv.Atoi(port)
	sp := servicePort(s, n)
	if sp == nil || d == nil || p.targetPort(d, sp.TargetPort) != containerPort(d.Spec.Template.Spec.Containers[0], intstr.FromString("grpc")) {
		p.addf("%s: %s=%q: port %s is not %s's gRPC port", where, name, target, port, peer)
	}
}

// serverURLs checks NATS_URL or REDIS_URL: no password written into a
// manifest, and a host inside the namespace names a rendered Service with
// that port.
func (p *policy) serverURLs(where, name, value string) {
	raw := strings.TrimPrefix(value, "redis+cluster://")
	for _, u := range strings.Split(raw, ",") {
		if !strings.Contains(u, "://") {
			u = "redis://" + u
		}
		parsed, err := url.Parse(u)
		if err != nil {
			p.addf("%s: %s: %v", where, name, err)
			continue
		}
		if _, hasPassword := parsed.User.Password(); hasPassword {
			p.addf("%s: %s carries a password; use *.existingSecret", where, name)
		}
		svcName, inCluster := strings.CutSuffix(parsed.Hostname(), "."+namespace+".svc.cluster.local")
		if !inCluster {
			continue
		}
		n, _ := strconv.Atoi(parsed.Port())
		if s := p.r.Services[svcName]; s == nil || servicePort(s, n) == nil {
			p.addf("%s: %s=%q: no rendered Service %s with port %d", where, name, value, svcName, n)
		}
	}
}

// services: every Service selects exactly one Deployment, on ports its
// pods have; router, delivery and presence are headless.
func (p *policy) services() {
	for _, s := range sortedValues(p.r.Services) {
		var matched []*appsv1.Deployment
		for _, d := range p.r.Deployments {
			if selects(s, d) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			p.addf("Service %s selects %d Deployments, want 1", s.Name, len(matched))
			continue
		}
		for _, sp := range s.Spec.Ports {
			if p.targetPort(matched[0], sp.TargetPort) == 0 {
				p.addf("Service %s port %s: targetPort %s is no container port", s.Name, sp.Name, sp.TargetPort.String())
			}
		}
	}
	for _, svc := range []string{"router", "delivery", "presence"} {
		s := p.r.Services[fullname+"-"+svc]
		if s == nil || s.Spec.ClusterIP != corev1.ClusterIPNone {
			p.addf("Service %s-%s: must exist and be headless (clusterIP: None) for gRPC client-side balancing", fullname, svc)
		}
	}
}

// autoscalers: each targets a rendered Deployment that leaves replicas to
// it, on resources its containers request.
func (p *policy) autoscalers() {
	for _, h := range sortedValues(p.r.HPAs) {
		ref := h.Spec.ScaleTargetRef
		d := p.r.Deployments[ref.Name]
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || d == nil {
			p.addf("HPA %s: target %s %s is not a rendered Deployment", h.Name, ref.Kind, ref.Name)
			continue
		}
		if d.Spec.Replicas != nil {
			p.addf("HPA %s: Deployment %s sets replicas, which every upgrade would reset", h.Name, d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			p.addf("HPA %s: want 1 <= minReplicas <= maxReplicas", h.Name)
		}
		if len(h.Spec.Metrics) == 0 {
			p.addf("HPA %s: no metrics", h.Name)
		}
		for _, m := range h.Spec.Metrics {
			if m.Resource == nil {
				continue
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				if q, ok := c.Resources.Requests[m.Resource.Name]; !ok || q.IsZero() {
					p.addf("HPA %s: scales on %s utilisation but container %s requests none", h.Name, m.Resource.Name, c.Name)
				}
			}
		}
	}
}

// disruptionBudgets: each selects one Deployment and lets at least one of
// its pods go.
func (p *policy) disruptionBudgets() {
	for _, b := range sortedValues(p.r.PDBs) {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil {
			p.addf("PDB %s: %v", b.Name, err)
			continue
		}
		var matched []*appsv1.Deployment
		for _, d := range p.r.Deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			p.addf("PDB %s selects %d Deployments, want 1", b.Name, len(matched))
			continue
		}
		if (b.Spec.MinAvailable == nil) == (b.Spec.MaxUnavailable == nil) {
			p.addf("PDB %s: set exactly one of minAvailable and maxUnavailable", b.Name)
			continue
		}
		replicas := p.minReplicas(matched[0])
		switch {
		case b.Spec.MaxUnavailable != nil && b.Spec.MaxUnavailable.Type == intstr.Int && b.Spec.MaxUnavailable.IntVal < 1:
			p.addf("PDB %s: maxUnavailable < 1 blocks every node drain", b.Name)
		case b.Spec.MinAvailable != nil && b.Spec.MinAvailable.Type == intstr.Int && b.Spec.MinAvailable.IntVal >= replicas:
			p.addf("PDB %s: minAvailable %d with %d replicas blocks every node drain", b.Name, b.Spec.MinAvailable.IntVal, replicas)
		}
	}
}

// minReplicas is the fewest pods d runs: its replicas, or its autoscaler's
// minimum.
func (p *policy) minReplicas(d *appsv1.Deployment) int32 {
	for _, h := range p.r.HPAs {
		if h.Spec.ScaleTargetRef.Name == d.Name && h.Spec.MinReplicas != nil {
			return *h.Spec.MinReplicas
		}
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// ingresses: every backend is a rendered Service port.
func (p *policy) ingresses() {
	for _, in := range sortedValues(p.r.Ingresses) {
		for _, rule := range in.Spec.Rules {
			if rule.HTTP == nil {
				p.addf("Ingress %s: rule without http paths", in.Name)
				continue
			}
			for _, path := range rule.HTTP.Paths {
				b := path.Backend.Service
				if b == nil {
					p.addf("Ingress %s: path %s has no Service backend", in.Name, path.Path)
					continue
				}
				s := p.r.Services[b.Name]
				if s == nil {
					p.addf("Ingress %s: Service %s is not rendered", in.Name, b.Name)
					continue
				}
				found := false
				for _, sp := range s.Spec.Ports {
					found = found || (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number)
				}
				if !found {
					p.addf("Ingress %s: Service %s has no port %s%d", in.Name, b.Name, b.Port.Name, b.Port.Number)
				}
			}
		}
	}
}

// serviceMonitors: each scrapes every Bachata service through a selected
// Service having its endpoint port.
func (p *policy) serviceMonitors() {
	for _, sm := range sortedValues(p.r.ServiceMonitors) {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			p.addf("ServiceMonitor %s: needs a non-empty selector", sm.Name)
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			p.addf("ServiceMonitor %s: no endpoints", sm.Name)
		}
		if !sm.Spec.NamespaceSelector.Any && !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, namespace) {
			p.addf("ServiceMonitor %s: does not look in namespace %s", sm.Name, namespace)
		}
		for _, ep := range sm.Spec.Endpoints {
			scraped := map[string]bool{}
			for _, s := range p.r.Services {
				if !sel.Matches(labels.Set(s.Labels)) {
					continue
				}
				for _, sp := range s.Spec.Ports {
					if sp.Name == ep.Port {
						scraped[s.Labels["app.kubernetes.io/component"]] = true
					}
				}
			}
			for _, svc := range bachataServices {
				if !scraped[svc] {
					p.addf("ServiceMonitor %s: endpoint %s scrapes no %s Service", sm.Name, ep.Port, svc)
				}
			}
		}
	}
}

// configMaps: no secret lands in a ConfigMap.
func (p *policy) configMaps() {
	for _, cm := range sortedValues(p.r.ConfigMaps) {
		for k := range cm.Data {
			if sensitiveVar.MatchString(k) {
				p.addf("ConfigMap %s: %s belongs in a Secret", cm.Name, k)
			}
		}
	}
}

// deploymentOf returns the Deployment of a component, or nil.
func (p *policy) deploymentOf(component string) *appsv1.Deployment {
	for _, d := range p.r.Deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] == component {
			return d
		}
	}
	return nil
}

// targetPort resolves a Service targetPort on d's containers: the port
// number, or 0 when no container has it.
func (p *policy) targetPort(d *appsv1.Deployment, tp intstr.IntOrString) int {
	for _, c := range d.Spec.Template.Spec.Containers {
		if n := containerPort(c, tp); n != 0 {
			return n
		}
	}
	return 0
}

// containerPort resolves a port by name or number on c; 0 when c has none.
func containerPort(c corev1.Container, port intstr.IntOrString) int {
	for _, cp := range c.Ports {
		if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// servicePort returns s's port numbered n, or nil.
func servicePort(s *corev1.Service, n int) *corev1.ServicePort {
	for i := range s.Spec.Ports {
		if int(s.Spec.Ports[i].Port) == n {
			return &s.Spec.Ports[i]
		}
	}
	return nil
}

// selects reports whether s sends traffic to d's pods.
func selects(s *corev1.Service, d *appsv1.Deployment) bool {
	return len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
}

// sortedValues returns m's values ordered by key, so violations come in a
// stable order.
func sortedValues[V any](m map[string]V) []V {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]V, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// quantity parses q for tests that build resources.
func quantity(q string) resource.Quantity { return resource.MustParse(q) }
