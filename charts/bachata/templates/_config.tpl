{{/*
The environment of each service, as ConfigMap data: exactly the variables
that service reads (services/<name>/internal/config/config.go). NATS_URL and
REDIS_URL are left out when they come from a Secret (nats.existingSecret,
redis.existingSecret); the JWT secret always comes from a Secret.
Call with the root context.
*/}}

{{- define "bachata.config.gateway" -}}
BACHATA_WS_ADDR: {{ printf ":%d" (int .Values.gateway.ports.http) | quote }}
BACHATA_ADMIN_ADDR: {{ printf ":%d" (int .Values.gateway.ports.admin) | quote }}
BACHATA_SERVER_NAME: {{ .Values.serverName | quote }}
BACHATA_ROUTER_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "router") | quote }}
BACHATA_DELIVERY_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "delivery") | quote }}
BACHATA_PRESENCE_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "presence") | quote }}
{{- if not .Values.nats.existingSecret }}
NATS_URL: {{ .Values.nats.url | quote }}
{{- end }}
BACHATA_NATS_PREFIX: {{ .Values.nats.prefix | quote }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.gateway.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.gateway.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_PING_INTERVAL" .pingInterval "BACHATA_IDLE_TIMEOUT" .idleTimeout "BACHATA_MAX_FRAME" .maxFrame "BACHATA_HEARTBEAT" .heartbeat "BACHATA_WRITE_TIMEOUT" .writeTimeout "BACHATA_RPC_TIMEOUT" .rpcTimeout "BACHATA_QUEUE_BYTES" .queueBytes) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bachata.config.router" -}}
BACHATA_GRPC_ADDR: {{ printf ":%d" (int .Values.router.ports.grpc) | quote }}
BACHATA_HTTP_ADDR: {{ printf ":%d" (int .Values.router.ports.admin) | quote }}
BACHATA_SERVER_NAME: {{ .Values.serverName | quote }}
BACHATA_DELIVERY_ADDR: {{ include "bachata.grpcTarget" (dict "root" $ "svc" "delivery") | quote }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.router.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.router.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_REQUIRE_SIGN" .requireSign "BACHATA_ENQUEUE_TIMEOUT" .enqueueTimeout) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bachata.config.delivery" -}}
BACHATA_GRPC_ADDR: {{ printf ":%d" (int .Values.delivery.ports.grpc) | quote }}
BACHATA_HTTP_ADDR: {{ printf ":%d" (int .Values.delivery.ports.admin) | quote }}
{{- if not .Values.redis.existingSecret }}
REDIS_URL: {{ .Values.redis.url | quote }}
{{- end }}
BACHATA_REDIS_PREFIX: {{ .Values.redis.prefix | quote }}
{{- if not .Values.nats.existingSecret }}
NATS_URL: {{ .Values.nats.url | quote }}
{{- end }}
BACHATA_NATS_PREFIX: {{ .Values.nats.prefix | quote }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.delivery.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.delivery.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_DELIVERY_WINDOW" .window "BACHATA_DEDUPE_TTL" .dedupeTTL "BACHATA_DELIVERY_SHARDS" .shards "BACHATA_DELIVERY_VISIBILITY" .visibility "BACHATA_DELIVERY_MAX_ATTEMPTS" .maxAttempts "BACHATA_DELIVERY_MAX_QUEUE_LENGTH" .maxQueueLength "BACHATA_DELIVERY_MAX_AGE" .maxAge "BACHATA_DELIVERY_UNDELIVERED_AFTER" .undeliveredAfter "BACHATA_DELIVERY_SHARD_LEASE" .shardLease "BACHATA_DELIVERY_EXPIRE_EVERY" .expireEvery) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "bachata.config.presence" -}}
BACHATA_GRPC_ADDR: {{ printf ":%d" (int .Values.presence.ports.grpc) | quote }}
BACHATA_HTTP_ADDR: {{ printf ":%d" (int .Values.presence.ports.admin) | quote }}
{{- if not .Values.redis.existingSecret }}
REDIS_URL: {{ .Values.redis.url | quote }}
{{- end }}
BACHATA_REDIS_PREFIX: {{ .Values.redis.prefix | quote }}
{{- if not .Values.nats.existingSecret }}
NATS_URL: {{ .Values.nats.url | quote }}
{{- end }}
BACHATA_NATS_PREFIX: {{ .Values.nats.prefix | quote }}
BACHATA_SHUTDOWN_TIMEOUT: {{ printf "%ds" (int .Values.presence.shutdownTimeoutSeconds) | quote }}
BACHATA_LOG_LEVEL: {{ .Values.log.level | quote }}
BACHATA_LOG_FORMAT: {{ .Values.log.format | quote }}
{{- with .Values.presence.config }}
{{- with include "bachata.optionalData" (dict "BACHATA_PRESENCE_LEASE" .lease "BACHATA_PRESENCE_SWEEP" .sweepInterval) }}
{{- printf "\n%s" . }}
{{- end }}
{{- end }}
{{- end }}
