package charttest

import (
	"bytes"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// valuesCase is one values file of charts/bachata/ci and what its
// rendering must hold beyond the policy.
type valuesCase struct {
	// file is the values file, in charts/bachata/ci.
	file string
	// externalSecrets are the Secrets the file names that the chart does
	// not create.
	externalSecrets []string
	// kinds is how many objects of each kind it renders.
	kinds map[string]int
	// check asserts what is particular to the file.
	check func(t *testing.T, r *rendered)
}

var valuesCases = []valuesCase{
	{
		file:  "default-values.yaml",
		kinds: map[string]int{"Deployment": 4, "Service": 5, "ConfigMap": 4, "Secret": 2, "ServiceAccount": 1, "PodDisruptionBudget": 4},
		check: func(t *testing.T, r *rendered) {
			for _, svc := range bachataServices {
				d := r.Deployments[fullname+"-"+svc]
				require.NotNil(t, d, svc)
				assert.Equal(t, int32(2), *d.Spec.Replicas, "%s replicas", svc)
				assert.Equal(t, int32(0), d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntVal, "%s: a rolling update keeps every pod until its successor is ready", svc)
				assert.Equal(t, "true", r.ConfigMaps[fullname+"-"+svc].Data["OTEL_SDK_DISABLED"], "no collector configured: no export")
			}
			gw := r.Deployments[fullname+"-gateway"]
			assert.Equal(t, int64(35), *gw.Spec.Template.Spec.TerminationGracePeriodSeconds, "2 x 15 s drain + 5 s")
			assert.Equal(t, "15s", r.ConfigMaps[fullname+"-gateway"].Data["BACHATA_SHUTDOWN_TIMEOUT"])
			assert.Equal(t, corev1.ServiceTypeClusterIP, r.Services[fullname+"-gateway"].Spec.Type)
			assert.Len(t, r.Secrets[fullname+"-jwt"].Data["jwt-secret"], 48, "generated JWT secret")
			assert.Len(t, r.Secrets[fullname+"-admin"].Data["admin-token"], 48, "generated admin token")
			assert.Equal(t, "nats://nats:4222", r.ConfigMaps[fullname+"-router"].Data["NATS_URL"], "the router's app route needs NATS")
		},
	},
	{
		file:            "production-values.yaml",
		externalSecrets: []string{"bachata-external", "bachata-auth"},
		kinds:           map[string]int{"Deployment": 4, "Service": 5, "ConfigMap": 5, "ServiceAccount": 1, "PodDisruptionBudget": 4, "HorizontalPodAutoscaler": 2, "Ingress": 1, "ServiceMonitor": 1},
		check: func(t *testing.T, r *rendered) {
			gw := r.Deployments[fullname+"-gateway"]
			assert.Nil(t, gw.Spec.Replicas, "the HPA owns the gateway's replicas")
			hpa := r.HPAs[fullname+"-gateway"]
			require.NotNil(t, hpa)
			assert.Equal(t, int32(3), *hpa.Spec.MinReplicas)
			assert.Equal(t, int32(30), hpa.Spec.MaxReplicas)
			require.NotNil(t, hpa.Spec.Behavior)
			require.NotNil(t, hpa.Spec.Behavior.ScaleDown)
			assert.Equal(t, int32(600), *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds, "gateways are removed slowly")
			assert.Equal(t, int32(4), *r.Deployments[fullname+"-delivery"].Spec.Replicas, "each service scales on its own")
			assert.Equal(t, int32(3), *r.Deployments[fullname+"-presence"].Spec.Replicas)

			c := gw.Spec.Template.Spec.Containers[0]
			require.NotNil(t, c.Lifecycle)
			assert.Equal(t, int64(5), c.Lifecycle.PreStop.Sleep.Seconds)
			assert.Equal(t, int64(50), *gw.Spec.Template.Spec.TerminationGracePeriodSeconds, "2 x 20 s drain + 5 s preStop + 5 s")
			for _, svc := range bachataServices {
				env := envNames(c)
				if svc != "gateway" {
					env = envNames(r.Deployments[fullname+"-"+svc].Spec.Template.Spec.Containers[0])
				}
				assert.Contains(t, env, "NATS_URL", "%s takes NATS_URL from the Secret", svc)
				assert.NotContains(t, r.ConfigMaps[fullname+"-"+svc].Data, "NATS_URL", svc)
				cm := r.ConfigMaps[fullname+"-"+svc].Data
				assert.Equal(t, "http://otel-collector.observability.svc:4317", cm["OTEL_EXPORTER_OTLP_ENDPOINT"], svc)
				assert.Equal(t, svc, cm["OTEL_SERVICE_NAME"])
				assert.Empty(t, r.Deployments[fullname+"-"+svc].Spec.Template.Annotations["prometheus.io/scrape"], "scraped by the ServiceMonitor only")
			}
			assert.Contains(t, envValue(c, "OTEL_RESOURCE_ATTRIBUTES"), "deployment.environment.name=production")

			in := r.Ingresses[fullname+"-gateway"]
			require.NotNil(t, in)
			for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
				secs, err := strconv.Atoi(in.Annotations[a])
				require.NoError(t, err, a)
				assert.GreaterOrEqual(t, secs, 3600, "%s: WebSockets live long", a)
			}
			assert.Equal(t, "letsencrypt", in.Annotations["cert-manager.io/cluster-issuer"], "the values' own annotations are kept")
			assert.Equal(t, "chat-example-com-tls", in.Spec.TLS[0].SecretName)

			sm := r.ServiceMonitors[fullname]
			require.NotNil(t, sm)
			assert.Equal(t, "kube-prometheus-stack", sm.Labels["release"])
			assert.Equal(t, corev1.ClusterIPNone, r.Services[fullname+"-gateway-admin"].Spec.ClusterIP, "the gateway's admin port is scraped without exposing it on the WebSocket Service")

			router := r.Deployments[fullname+"-router"].Spec.Template.Spec
			assert.Equal(t, "/etc/bachata/routes.json", r.ConfigMaps[fullname+"-router"].Data["BACHATA_ROUTES_FILE"])
			assert.Contains(t, r.ConfigMaps[fullname+"-router-routes"].Data["routes.json"], `"route":"ephemeral"`)
			require.Len(t, router.Containers[0].VolumeMounts, 1)
			assert.Equal(t, "/etc/bachata", router.Containers[0].VolumeMounts[0].MountPath)

			delivery := r.Deployments[fullname+"-delivery"].Spec.Template.Spec
			require.Len(t, delivery.TopologySpreadConstraints, 1)
			assert.Equal(t, "delivery", delivery.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app.kubernetes.io/component"], "a constraint counts its own service's pods")
		},
	},
	{
		file:  "tracing-values.yaml",
		kinds: map[string]int{"Deployment": 4, "Service": 5, "ConfigMap": 4, "Secret": 2, "ServiceAccount": 1, "PodDisruptionBudget": 4, "ServiceMonitor": 1},
		check: func(t *testing.T, r *rendered) {
			for _, svc := range bachataServices {
				cm := r.ConfigMaps[fullname+"-"+svc].Data
				assert.Equal(t, "http://otel-collector.observability.svc:4317", cm["OTEL_EXPORTER_OTLP_ENDPOINT"], "%s exports to the collector of deploy/otel", svc)
				assert.Equal(t, "grpc", cm["OTEL_EXPORTER_OTLP_PROTOCOL"], svc)
				assert.Equal(t, "parentbased_traceidratio", cm["OTEL_TRACES_SAMPLER"], svc)
				assert.Equal(t, "0.1", cm["OTEL_TRACES_SAMPLER_ARG"], svc)
				assert.NotContains(t, cm, "OTEL_SDK_DISABLED", svc)
				assert.Equal(t, svc, cm["OTEL_SERVICE_NAME"])
			}
		},
	},
	{
		file:  "bundled-values.yaml",
		kinds: map[string]int{"Deployment": 6, "Service": 7, "ConfigMap": 4, "Secret": 2, "ServiceAccount": 1},
		check: func(t *testing.T, r *rendered) {
			natsURL := "nats://" + fullname + "-nats." + namespace + ".svc.cluster.local:4222"
			redisURL := "redis://" + fullname + "-redis." + namespace + ".svc.cluster.local:6379/0"
			for _, svc := range bachataServices {
				assert.Equal(t, natsURL, r.ConfigMaps[fullname+"-"+svc].Data["NATS_URL"], svc)
				assert.Equal(t, int32(1), *r.Deployments[fullname+"-"+svc].Spec.Replicas)
			}
			assert.Equal(t, redisURL, r.ConfigMaps[fullname+"-delivery"].Data["REDIS_URL"])
			assert.Equal(t, redisURL, r.ConfigMaps[fullname+"-presence"].Data["REDIS_URL"])
			redis := r.Deployments[fullname+"-redis"]
			require.NotNil(t, redis)
			assert.Equal(t, appsv1.RecreateDeploymentStrategyType, redis.Spec.Strategy.Type, "one AOF writer at a time")
			args := strings.Join(redis.Spec.Template.Spec.Containers[0].Args, " ")
			for _, want := range []string{"--appendonly yes", "--appendfsync always", "--maxmemory-policy noeviction"} {
				assert.Contains(t, args, want, "the Redis settings operations.md asks for")
			}
			assert.Equal(t, "try-bachata-out-not-a-production-secret", string(r.Secrets[fullname+"-jwt"].Data["jwt-secret"]))
		},
	},
	{
		file:            "minimal-values.yaml",
		externalSecrets: []string{"my-jwt"},
		kinds:           map[string]int{"Deployment": 4, "Service": 5, "ConfigMap": 4},
		check: func(t *testing.T, r *rendered) {
			gw := r.Deployments[fullname+"-gateway"].Spec.Template.Spec
			assert.Equal(t, "default", gw.ServiceAccountName)
			assert.NotContains(t, envNames(gw.Containers[0]), "BACHATA_ADMIN_TOKEN", "admin API off")
			assert.Equal(t, "my-jwt", gw.Containers[0].Env[slices.IndexFunc(gw.Containers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "BACHATA_JWT_SECRET" })].ValueFrom.SecretKeyRef.Name)
			assert.Equal(t, "redis+cluster://redis-0.redis.infra:6379,redis-1.redis.infra:6379", r.ConfigMaps[fullname+"-delivery"].Data["REDIS_URL"])
		},
	},
}

// TestValuesFilesCovered: every values file in ci/ is a case above, so a new
// file cannot go unchecked.
func TestValuesFilesCovered(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var have []string
	for _, c := range valuesCases {
		have = append(have, c.file)
	}
	for _, f := range files {
		assert.Contains(t, have, filepath.Base(f), "add %s to valuesCases", f)
	}
}

// TestChart lints and renders the chart under each values file, decodes
// every object strictly and checks it against the policy.
func TestChart(t *testing.T) {
	t.Parallel()
	for _, tc := range valuesCases {
		t.Run(strings.TrimSuffix(tc.file, "-values.yaml"), func(t *testing.T) {
			t.Parallel()
			values := filepath.Join(chartDir, "ci", tc.file)
			out, err := helm(t, "lint", "--strict", chartDir, "--namespace", namespace, "-f", values)
			require.NoError(t, err)
			assert.Contains(t, string(out), "0 chart(s) failed")

			r := render(t, "-f", values)
			assert.Equal(t, tc.kinds, r.Kinds)
			assert.Empty(t, checkPolicy(r, tc.externalSecrets))
			tc.check(t, r)
		})
	}
}

// TestStrictDecoding: a misspelt or unknown field anywhere in an object
// fails decoding, as it would fail (or, worse, be dropped by) the API
// server.
func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	out, err := template(t)
	require.NoError(t, err)
	_, err = decode(out)
	require.NoError(t, err, "the unchanged rendering decodes")

	tests := []struct {
		name    string
		old     string
		new     string
		wantErr string
	}{
		{name: "misspelt probe", old: "readinessProbe:", new: "readynessProbe:", wantErr: `unknown field "spec.template.spec.containers[0].readynessProbe"`},
		{name: "unknown spec field", old: "  replicas: 2\n", new: "  replicas: 2\n  replica: 3\n", wantErr: `unknown field "spec.replica"`},
		{name: "wrong case", old: "  replicas: 2\n", new: "  Replicas: 2\n", wantErr: `unknown field "spec.Replicas"`},
		{name: "unknown kind", old: "kind: PodDisruptionBudget", new: "kind: PodDisruptionBudgett", wantErr: "unexpected kind"},
		{name: "bad quantity", old: "memory: 128Mi", new: "memory: 128MB!", wantErr: "quantities must match"},
		{name: "duplicate key", old: "  replicas: 2\n", new: "  replicas: 2\n  replicas: 3\n", wantErr: `key "replicas" already set in map`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.True(t, bytes.Contains(out, []byte(tt.old)), "the rendering has %q", tt.old)
			_, err := decode(bytes.Replace(out, []byte(tt.old), []byte(tt.new), 1))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// TestPolicyCatchesViolations: each policy check fails on a rendering
// broken in the way it guards against.
func TestPolicyCatchesViolations(t *testing.T) {
	t.Parallel()
	gateway := fullname + "-gateway"
	container := func(r *rendered, svc string) *corev1.Container {
		return &r.Deployments[fullname+"-"+svc].Spec.Template.Spec.Containers[0]
	}
	tests := []struct {
		name   string
		mutate func(r *rendered)
		want   string
	}{
		{name: "no cpu limit", mutate: func(r *rendered) { delete(container(r, "router").Resources.Limits, corev1.ResourceCPU) }, want: "container router: no cpu limit"},
		{name: "no memory request", mutate: func(r *rendered) { delete(container(r, "delivery").Resources.Requests, corev1.ResourceMemory) }, want: "no memory request"},
		{name: "request over limit", mutate: func(r *rendered) {
			container(r, "presence").Resources.Requests[corev1.ResourceMemory] = quantity("1Gi")
		}, want: "memory request 1Gi exceeds its limit"},
		{name: "no readiness probe", mutate: func(r *rendered) { container(r, "gateway").ReadinessProbe = nil }, want: "no readiness probe"},
		{name: "liveness on readyz", mutate: func(r *rendered) { container(r, "router").LivenessProbe.HTTPGet.Path = "/readyz" }, want: "liveness probe must be GET /healthz"},
		{name: "root", mutate: func(r *rendered) { f := false; container(r, "gateway").SecurityContext.RunAsNonRoot = &f }, want: "runAsNonRoot must be true"},
		{name: "user 0", mutate: func(r *rendered) { var u int64; container(r, "gateway").SecurityContext.RunAsUser = &u }, want: "runs as user 0"},
		{name: "writable root", mutate: func(r *rendered) { f := false; container(r, "delivery").SecurityContext.ReadOnlyRootFilesystem = &f }, want: "readOnlyRootFilesystem must be true"},
		{name: "privilege escalation", mutate: func(r *rendered) { container(r, "presence").SecurityContext.AllowPrivilegeEscalation = nil }, want: "allowPrivilegeEscalation must be false"},
		{name: "capabilities kept", mutate: func(r *rendered) { container(r, "router").SecurityContext.Capabilities.Drop = nil }, want: "capabilities must drop ALL"},
		{name: "inline secret", mutate: func(r *rendered) {
			c := container(r, "gateway")
			for i := range c.Env {
				if c.Env[i].Name == "BACHATA_JWT_SECRET" {
					c.Env[i] = corev1.EnvVar{Name: "BACHATA_JWT_SECRET", Value: "0123456789abcdef0123"}
				}
			}
		}, want: "BACHATA_JWT_SECRET is written inline"},
		{name: "secret in ConfigMap", mutate: func(r *rendered) { r.ConfigMaps[gateway].Data["BACHATA_ADMIN_TOKEN"] = "0123456789abcdef0123" }, want: "ConfigMap " + gateway + ": BACHATA_ADMIN_TOKEN belongs in a Secret"},
		{name: "missing Secret", mutate: func(r *rendered) { delete(r.Secrets, fullname+"-jwt") }, want: "Secret " + fullname + "-jwt key jwt-secret is neither rendered"},
		{name: "grace shorter than drain", mutate: func(r *rendered) {
			g := int64(15)
			r.Deployments[gateway].Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, want: "terminationGracePeriodSeconds 15s does not exceed the drain"},
		{name: "ClusterIP for gRPC", mutate: func(r *rendered) { r.Services[fullname+"-delivery"].Spec.ClusterIP = "" }, want: "must exist and be headless"},
		{name: "target not dns", mutate: func(r *rendered) {
			r.ConfigMaps[gateway].Data["BACHATA_ROUTER_ADDR"] = fullname + "-router:9081"
		}, want: "BACHATA_ROUTER_ADDR=\"" + fullname + "-router:9081\": want dns:///"},
		{name: "target wrong port", mutate: func(r *rendered) {
			r.ConfigMaps[gateway].Data["BACHATA_PRESENCE_ADDR"] = "dns:///" + fullname + "-presence." + namespace + ".svc.cluster.local:8183"
		}, want: "port 8183 is not presence's gRPC port"},
		{name: "variable nobody reads", mutate: func(r *rendered) { r.ConfigMaps[fullname+"-router"].Data["REDIS_URL"] = "redis://redis:6379" }, want: "REDIS_URL is set but router does not read it"},
		{name: "required variable missing", mutate: func(r *rendered) { delete(r.ConfigMaps[fullname+"-router"].Data, "NATS_URL") }, want: "container router: NATS_URL is not set"},
		{name: "listen port mismatch", mutate: func(r *rendered) { r.ConfigMaps[gateway].Data["BACHATA_WS_ADDR"] = ":9999" }, want: "BACHATA_WS_ADDR=\":9999\" does not match container port http"},
		{name: "password in URL", mutate: func(r *rendered) {
			r.ConfigMaps[fullname+"-delivery"].Data["REDIS_URL"] = "redis://:hunter2@redis:6379/0"
		}, want: "REDIS_URL carries a password"},
		{name: "service selects nothing", mutate: func(r *rendered) {
			r.Services[fullname+"-router"].Spec.Selector["app.kubernetes.io/component"] = "rooter"
		}, want: "Service " + fullname + "-router selects 0 Deployments"},
		{name: "PDB blocks drains", mutate: func(r *rendered) {
			pdb := r.PDBs[fullname+"-presence"]
			pdb.Spec.MaxUnavailable.IntVal = 0
		}, want: "maxUnavailable < 1 blocks every node drain"},
		{name: "latest image", mutate: func(r *rendered) { container(r, "router").Image = "ghcr.io/bachata-chat/bachata-router:latest" }, want: "is :latest"},
		{name: "token mounted", mutate: func(r *rendered) {
			r.Deployments[gateway].Spec.Template.Spec.AutomountServiceAccountToken = nil
		}, want: "automountServiceAccountToken must be false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := render(t)
			require.Empty(t, checkPolicy(r, nil), "the unchanged rendering passes")
			tt.mutate(r)
			violations := checkPolicy(r, nil)
			require.NotEmpty(t, violations)
			assert.True(t, slices.ContainsFunc(violations, func(v string) bool { return strings.Contains(v, tt.want) }),
				"want a violation containing %q, got %q", tt.want, violations)
		})
	}
}

// TestChartRefusesBadValues: values that would break a running system
// fail at render time, with a message saying why.
func TestChartRefusesBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{name: "grace within the drain", set: []string{"gateway.terminationGracePeriodSeconds=15"}, want: "gateway.terminationGracePeriodSeconds (15) must exceed shutdownTimeoutSeconds + preStopSleepSeconds (15)"},
		{name: "short JWT secret", set: []string{"jwt.secret=short"}, want: "jwt.secret must be at least 16 bytes"},
		{name: "short admin token", set: []string{"adminToken.token=short"}, want: "adminToken.token must be at least 16 bytes"},
		{name: "no NATS", set: []string{"nats.url="}, want: "nats.url is required"},
		{name: "no Redis", set: []string{"redis.url="}, want: "redis.url is required"},
		{name: "ingress timeout below ping", set: []string{"gateway.ingress.enabled=true", "gateway.ingress.timeoutSeconds=30"}, want: "timeoutSeconds must be at least 60"},
		{name: "bundled redis fsync", set: []string{"redis.bundled.enabled=true", "redis.bundled.appendfsync=no"}, want: "appendfsync must be always or everysec"},
		{name: "autoscaler min over max", set: []string{"gateway.autoscaling.enabled=true", "gateway.autoscaling.minReplicas=5", "gateway.autoscaling.maxReplicas=2"}, want: "minReplicas exceeds maxReplicas"},
		{name: "PDB with neither bound", set: []string{"router.podDisruptionBudget.maxUnavailable=null"}, want: "needs maxUnavailable or minAvailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, err := template(t, args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// envNames returns the names of c's env entries.
func envNames(c corev1.Container) []string {
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	return names
}

// envValue returns the inline value of c's variable name.
func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}
