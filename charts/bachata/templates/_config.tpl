{{/*
The environment of each service, as ConfigMap data: exactly the variables
that service reads (services/<name>/internal/config/config.go; the chart
test checks every name against those files) plus the standard OTEL_*
variables. NATS_URL and REDIS_URL are left out when they come from a Secret
(nats.existingSecret, redis.existingSecret); the JWT secret and the admin
token always come from a Secret. Call with the root context.
*/}}

{{- define "bachata.config.gateway" -}}
BACHATA_WS_ADDR: {{ printf ":%d" (int .Values.gateway.ports.http) | quote }}
BACHATA_ADMIN_ADDR: {{ printf ":%d" (int .Values.gateway.ports.admin) | quote }}
BACHATA_SERVER_NAME: {{ .Values.serverName | quote }}
BACHATA_ROUTER_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "router") | quote }}
BACHATA_DELIVERY_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "delivery") | quote }}
BACHATA_PRESENCE_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "presence") | quote }}
{{- include "bachata.config.nats" . }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.gateway.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.gateway.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_PING_INTERVAL" .pingInterval "BACHATA_IDLE_TIMEOUT" .idleTimeout "BACHATA_MAX_FRAME" .maxFrame "BACHATA_HEARTBEAT" .heartbeat "BACHATA_WRITE_TIMEOUT" .writeTimeout "BACHATA_RPC_TIMEOUT" .rpcTimeout "BACHATA_QUEUE_BYTES" .queueBytes "BACHATA_WS_READER" .wsReader "BACHATA_JWKS_URL" .jwksUrl "BACHATA_JWKS_REFRESH" .jwksRefresh "BACHATA_AUTH_HOOK_ADDR" .authHookAddr "BACHATA_AUTH_HOOK_TIMEOUT" .authHookTimeout "BACHATA_ALLOWED_ORIGINS" .allowedOrigins "BACHATA_RATE_LIMIT" .rateLimit "BACHATA_RATE_BURST" .rateBurst "BACHATA_RATE_STRIKES" .rateStrikes "BACHATA_MAX_USER_CONNECTIONS" .maxUserConnections "BACHATA_PRESENCE_COALESCE" .presenceCoalesce "BACHATA_PRESENCE_MAX_WATCH" .presenceMaxWatch) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- include "bachata.config.otel" (dict "root" $ "svc" "gateway") }}
{{- end }}

{{- define "bachata.config.router" -}}
BACHATA_GRPC_ADDR: {{ printf ":%d" (int .Values.router.ports.grpc) | quote }}
BACHATA_HTTP_ADDR: {{ printf ":%d" (int .Values.router.ports.admin) | quote }}
BACHATA_SERVER_NAME: {{ .Values.serverName | quote }}
BACHATA_DELIVERY_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "delivery") | quote }}
{{- /* The router connects to NATS when its chain has the app route, as the default chain does. */}}
{{- include "bachata.config.nats" . }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.router.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- if .Values.router.routes }}
BACHATA_ROUTES_FILE: "/etc/bachata/routes.json"
{{- end }}
{{- with .Values.router.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_REQUIRE_SIGN" .requireSign "BACHATA_ENQUEUE_TIMEOUT" .enqueueTimeout) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- include "bachata.config.otel" (dict "root" $ "svc" "router") }}
{{- end }}

{{- define "bachata.config.delivery" -}}
BACHATA_GRPC_ADDR: {{ printf ":%d" (int .Values.delivery.ports.grpc) | quote }}
BACHATA_HTTP_ADDR: {{ printf ":%d" (int .Values.delivery.ports.admin) | quote }}
{{- include "bachata.config.redis" . }}
{{- include "bachata.config.nats" . }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.delivery.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.delivery.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_DELIVERY_WINDOW" .window "BACHATA_DEDUPE_TTL" .dedupeTTL "BACHATA_DELIVERY_SHARDS" .shards "BACHATA_DELIVERY_VISIBILITY" .visibility "BACHATA_DELIVERY_MAX_ATTEMPTS" .maxAttempts "BACHATA_DELIVERY_MAX_QUEUE_LENGTH" .maxQueueLength "BACHATA_DELIVERY_MAX_AGE" .maxAge "BACHATA_DELIVERY_UNDELIVERED_AFTER" .undeliveredAfter "BACHATA_DELIVERY_SHARD_LEASE" .shardLease "BACHATA_DELIVERY_EXPIRE_EVERY" .expireEvery) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- include "bachata.config.otel" (dict "root" $ "svc" "delivery") }}
{{- end }}

{{- define "bachata.config.presence" -}}
BACHATA_GRPC_ADDR: {{ printf ":%d" (int .Values.presence.ports.grpc) | quote }}
BACHATA_HTTP_ADDR: {{ printf ":%d" (int .Values.presence.ports.admin) | quote }}
{{- include "bachata.config.redis" . }}
{{- include "bachata.config.nats" . }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.presence.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.presence.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_PRESENCE_LEASE" .lease "BACHATA_PRESENCE_SWEEP" .sweepInterval "BACHATA_SESSION_TTL" .sessionTTL) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- include "bachata.config.otel" (dict "root" $ "svc" "presence") }}
{{- end }}

{{/*
NATS_URL (unless it comes from a Secret) and BACHATA_NATS_PREFIX, each on a
line of its own after a newline.
*/}}
{{- define "bachata.config.nats" -}}
{{- if not (include "bachata.natsFromSecret" .) }}
NATS_URL: {{ include "bachata.natsURL" . | quote }}
{{- end }}
BACHATA_NATS_PREFIX: {{ .Values.nats.prefix | quote }}
{{- end }}

{{/*
REDIS_URL (unless it comes from a Secret) and BACHATA_REDIS_PREFIX.
*/}}
{{- define "bachata.config.redis" -}}
{{- if not (include "bachata.redisFromSecret" .) }}
REDIS_URL: {{ include "bachata.redisURL" . | quote }}
{{- end }}
BACHATA_REDIS_PREFIX: {{ .Values.redis.prefix | quote }}
{{- end }}

{{/*
The OTEL_* variables that are the same for every pod of a service; the
per-pod resource attributes are in the Deployment's env.
Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.config.otel" -}}
{{- with .root.Values.otel }}
OTEL_SERVICE_NAME: {{ $.svc | quote }}
{{- if .endpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ .endpoint | quote }}
OTEL_EXPORTER_OTLP_PROTOCOL: {{ .protocol | quote }}
OTEL_TRACES_SAMPLER: {{ .sampler | quote }}
{{- if .samplerArg }}
OTEL_TRACES_SAMPLER_ARG: {{ .samplerArg | toString | quote }}
{{- end }}
{{- else }}
OTEL_SDK_DISABLED: "true"
{{- end }}
{{- end }}
{{- end }}

{{/*
OTEL_RESOURCE_ATTRIBUTES of one service's pods: references $(POD_NAME),
so it follows POD_NAME in the container's env.
Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.otelResourceAttributes" -}}
{{- $attrs := list "service.namespace=bachata" (printf "service.version=%s" .root.Chart.AppVersion) "service.instance.id=$(POD_NAME)" "k8s.pod.name=$(POD_NAME)" (printf "k8s.namespace.name=%s" .root.Release.Namespace) (printf "k8s.deployment.name=%s" (include "bachata.svcname" .)) }}
{{- range $k, $v := .root.Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
{{- join "," $attrs }}
{{- end }}
