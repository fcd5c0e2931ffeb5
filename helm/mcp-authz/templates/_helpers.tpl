{{/* Names: <release>-<chart> unless overridden, at most 63 characters (DNS labels). */}}
{{- define "mcp-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcp-authz.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mcp-authz.adminName" -}}
{{- printf "%s-admin" (include "mcp-authz.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcp-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mcp-authz.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mcp-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcp-authz.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mcp-authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mcp-authz.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "true" when the store is Redis (any mode), "" for the embedded SQLite store. */}}
{{- define "mcp-authz.redis" -}}
{{- if ne .Values.redis.mode "none" -}}true{{- end -}}
{{- end -}}

{{/*
Refuses values that cannot run: the SQLite store serves one replica (its volume is
ReadWriteOnce and its database is local), and each Redis mode needs its addresses.
*/}}
{{- define "mcp-authz.validate" -}}
{{- if not (include "mcp-authz.redis" .) -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail "replicaCount > 1 needs Redis: the embedded SQLite store serves one replica (set redis.mode and its addresses)" -}}
{{- end -}}
{{- if .Values.autoscaling.enabled -}}
{{- fail "autoscaling.enabled needs Redis: the embedded SQLite store serves one replica (set redis.mode and its addresses)" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "standalone") (not .Values.redis.url) -}}
{{- fail "redis.mode standalone needs redis.url" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "sentinel") (or (not .Values.redis.sentinels) (not .Values.redis.sentinelName)) -}}
{{- fail "redis.mode sentinel needs redis.sentinels and redis.sentinelName" -}}
{{- end -}}
{{- if and (eq .Values.redis.mode "cluster") (not .Values.redis.clusterNodes) -}}
{{- fail "redis.mode cluster needs redis.clusterNodes" -}}
{{- end -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (add .Values.preStopSleepSeconds .Values.shutdownGracePeriodSeconds) -}}
{{- fail "terminationGracePeriodSeconds must be more than preStopSleepSeconds + shutdownGracePeriodSeconds, or the kubelet kills requests in flight" -}}
{{- end -}}
{{- if and .Values.secrets.existingSecret (or .Values.secrets.cookieKeys .Values.secrets.signingKeys .Values.secrets.redisPassword .Values.secrets.clientSecrets) -}}
{{- fail "secrets.existingSecret is set: put cookie keys, signing keys, the Redis password and client secrets in that Secret (secrets.existingSecretKeys), not in values" -}}
{{- end -}}
{{- if and .Values.secrets.redisPassword (not (include "mcp-authz.redis" .)) -}}
{{- fail "secrets.redisPassword is set but redis.mode is none" -}}
{{- end -}}
{{- end -}}

{{/* The name of the Secret holding the secret files (created by the chart or existing). */}}
{{- define "mcp-authz.secretName" -}}
{{- default (include "mcp-authz.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/*
The keys of that Secret, comma-separated, each becoming a file in /etc/mcp-authz/secrets:
cookie-keys, signing-keys.json, redis-password, client-<client_id>. Empty when there is none.
*/}}
{{- define "mcp-authz.secretKeys" -}}
{{- $keys := list -}}
{{- if .Values.secrets.existingSecret -}}
{{- $keys = .Values.secrets.existingSecretKeys -}}
{{- else -}}
{{- if .Values.secrets.cookieKeys -}}{{- $keys = append $keys "cookie-keys" -}}{{- end -}}
{{- if .Values.secrets.signingKeys -}}{{- $keys = append $keys "signing-keys.json" -}}{{- end -}}
{{- if .Values.secrets.redisPassword -}}{{- $keys = append $keys "redis-password" -}}{{- end -}}
{{- range $id := keys .Values.secrets.clientSecrets | sortAlpha -}}
{{- $keys = append $keys (printf "client-%s" $id) -}}
{{- end -}}
{{- range $name := keys .Values.secrets.files | sortAlpha -}}
{{- $keys = append $keys (printf "file-%s" $name) -}}
{{- end -}}
{{- end -}}
{{- join "," $keys -}}
{{- end -}}
