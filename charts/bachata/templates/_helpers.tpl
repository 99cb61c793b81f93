{{/*
The four services this chart runs, in dependency order.
*/}}
{{- define "bachata.services" -}}
presence delivery router gateway
{{- end }}

{{/*
Chart name.
*/}}
{{- define "bachata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release. Service names append "-<service>" (at most
"-presence", 9 characters), so this stays within 54 characters.
*/}}
{{- define "bachata.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of one service's objects. Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.svcname" -}}
{{- printf "%s-%s" (include "bachata.fullname" .root) .svc }}
{{- end }}

{{- define "bachata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels common to every object.
*/}}
{{- define "bachata.labels" -}}
helm.sh/chart: {{ include "bachata.chart" . }}
app.kubernetes.io/name: {{ include "bachata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bachata
{{- end }}

{{/*
Selector labels of one service. Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bachata.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .svc }}
{{- end }}

{{/*
All labels of one service's objects. Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.svcLabels" -}}
{{ include "bachata.labels" .root }}
app.kubernetes.io/component: {{ .svc }}
{{- end }}

{{- define "bachata.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bachata.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the JWT secret, and its key.
*/}}
{{- define "bachata.jwtSecretName" -}}
{{- if .Values.jwt.existingSecret }}
{{- .Values.jwt.existingSecret }}
{{- else }}
{{- printf "%s-jwt" (include "bachata.fullname" .) }}
{{- end }}
{{- end }}

{{- define "bachata.jwtSecretKey" -}}
{{- if .Values.jwt.existingSecret }}
{{- .Values.jwt.existingSecretKey }}
{{- else -}}
jwt-secret
{{- end }}
{{- end }}

{{/*
Image of one service. Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.image" -}}
{{- $v := index .root.Values .svc }}
{{- printf "%s:%s" (required (printf "%s.image.repository is required" .svc) $v.image.repository) (default .root.Chart.AppVersion $v.image.tag | toString) }}
{{- end }}

{{/*
gRPC target of one service from inside the cluster: dns:/// over the
headless Service, so clients balance over every ready pod.
Call with (dict "root" $ "svc" "router").
*/}}
{{- define "bachata.grpcTarget" -}}
{{- $v := index .root.Values .svc }}
{{- printf "dns:///%s.%s.svc.%s:%d" (include "bachata.svcname" .) .root.Release.Namespace .root.Values.clusterDomain (int $v.ports.grpc) }}
{{- end }}

{{/*
terminationGracePeriodSeconds of one service: the explicit value, which must
exceed the shutdown timeout plus the preStop sleep, or by default twice the
shutdown timeout (the service stops its listeners one after another, each
bounded by it) plus the preStop sleep plus 5 seconds.
Call with (dict "root" $ "svc" "gateway").
*/}}
{{- define "bachata.terminationGrace" -}}
{{- $v := index .root.Values .svc }}
{{- $shutdown := int $v.shutdownTimeoutSeconds }}
{{- if le $shutdown 0 }}
{{- fail (printf "%s.shutdownTimeoutSeconds must be > 0" .svc) }}
{{- end }}
{{- $floor := add $shutdown (int (default 0 $v.preStopSleepSeconds)) }}
{{- if kindIs "invalid" $v.terminationGracePeriodSeconds }}
{{- add $floor $shutdown 5 }}
{{- else if le (int $v.terminationGracePeriodSeconds) $floor }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must exceed shutdownTimeoutSeconds + preStopSleepSeconds (%d)" .svc (int $v.terminationGracePeriodSeconds) $floor) }}
{{- else }}
{{- int $v.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
Optional settings as ConfigMap data lines, one per set value: a value that
is null or "" is left out, so the service's own default applies. Whole
numbers are written without an exponent. Call with a dict of variable name
to value; the output has no leading newline (use nindent).
*/}}
{{- define "bachata.optionalData" -}}
{{- $lines := list }}
{{- range $name, $value := . }}
{{- if kindIs "float64" $value }}
{{- $value = printf "%d" (int64 $value) }}
{{- end }}
{{- if not (or (kindIs "invalid" $value) (eq (toString $value) "")) }}
{{- $lines = append $lines (printf "%s: %s" $name (toString $value | quote)) }}
{{- end }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
NATS_URL: the bundled server's Service, or nats.url. Empty output when it
comes from nats.existingSecret (see bachata.natsFromSecret).
*/}}
{{- define "bachata.natsURL" -}}
{{- if .Values.nats.bundled.enabled }}
{{- printf "nats://%s-nats.%s.svc.%s:4222" (include "bachata.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- else if not .Values.nats.existingSecret }}
{{- required "nats.url is required (or nats.existingSecret, or nats.bundled.enabled)" .Values.nats.url }}
{{- end }}
{{- end }}

{{- define "bachata.natsFromSecret" -}}
{{- if and .Values.nats.existingSecret (not .Values.nats.bundled.enabled) }}true{{ end }}
{{- end }}

{{/*
REDIS_URL: the bundled server's Service, or redis.url. Empty output when it
comes from redis.existingSecret (see bachata.redisFromSecret).
*/}}
{{- define "bachata.redisURL" -}}
{{- if .Values.redis.bundled.enabled }}
{{- printf "redis://%s-redis.%s.svc.%s:6379/0" (include "bachata.fullname" .) .Release.Namespace .Values.clusterDomain }}
{{- else if not .Values.redis.existingSecret }}
{{- required "redis.url is required (or redis.existingSecret, or redis.bundled.enabled)" .Values.redis.url }}
{{- end }}
{{- end }}

{{- define "bachata.redisFromSecret" -}}
{{- if and .Values.redis.existingSecret (not .Values.redis.bundled.enabled) }}true{{ end }}
{{- end }}

{{/*
Name of the Secret holding the admin API token, and its key.
*/}}
{{- define "bachata.adminSecretName" -}}
{{- if .Values.adminToken.existingSecret }}
{{- .Values.adminToken.existingSecret }}
{{- else }}
{{- printf "%s-admin" (include "bachata.fullname" .) }}
{{- end }}
{{- end }}

{{- define "bachata.adminSecretKey" -}}
{{- if .Values.adminToken.existingSecret }}
{{- .Values.adminToken.existingSecretKey }}
{{- else -}}
admin-token
{{- end }}
{{- end }}

{{/*
A secret value the chart keeps in a Secret it creates: the given value, or
the one already in the cluster (so upgrades keep it), or a new random one.
Call with (dict "root" $ "name" <Secret name> "key" <data key> "value" <value>).
*/}}
{{- define "bachata.keptSecret" -}}
{{- $secret := .value }}
{{- if not $secret }}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $existing (index ($existing.data | default dict) .key) }}
{{- $secret = index $existing.data .key | b64dec }}
{{- else }}
{{- $secret = randAlphaNum 48 }}
{{- end }}
{{- end }}
{{- $secret }}
{{- end }}

{{/*
Image of a bundled dependency. Call with its values (nats.bundled or
redis.bundled).
*/}}
{{- define "bachata.bundledImage" -}}
{{- printf "%s:%s" .image.repository (toString .image.tag) }}
{{- end }}
