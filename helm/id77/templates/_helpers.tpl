{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "id77.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release; service names are appended to it, so it leaves room for them. */}}
{{- define "id77.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "id77.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of a service's objects. Call with (dict "root" $ "name" $name). */}}
{{- define "id77.componentFullname" -}}
{{- printf "%s-%s" (include "id77.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "id77.labels" -}}
helm.sh/chart: {{ include "id77.chart" . }}
app.kubernetes.io/name: {{ include "id77.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: id77
{{- end }}

{{/* Selector labels of a service's pods. Call with (dict "root" $ "name" $name). */}}
{{- define "id77.selectorLabels" -}}
app.kubernetes.io/name: {{ include "id77.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Labels of a service's objects. Call with (dict "root" $ "name" $name). */}}
{{- define "id77.componentLabels" -}}
{{ include "id77.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "id77.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "id77.configmapName" -}}
{{- printf "%s-config" (include "id77.fullname" .) }}
{{- end }}

{{/* Environment variable naming a gRPC service's address, e.g. ID77_MEMBERSHIP_URL. */}}
{{- define "id77.upstreamEnvName" -}}
{{- printf "ID77_%s_URL" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
The enabled services a service calls (its `calls`), as a JSON list. Call with (dict "root" $ "name" $name "svc"
$svc); use with fromJsonArray.
*/}}
{{- define "id77.callees" -}}
{{- $out := list }}
{{- range $other, $o := .root.Values.services }}
{{- if and $o.enabled (ne $other $.name) (has $other (default list $.svc.calls)) }}
{{- $out = append $out $other }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The enabled services that call a service, as a JSON list. Call with (dict "root" $ "name" $name). */}}
{{- define "id77.callers" -}}
{{- $out := list }}
{{- range $other, $o := .root.Values.services }}
{{- if and $o.enabled (ne $other $.name) (has $.name (default list $o.calls)) }}
{{- $out = append $out $other }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* Whether a service serves metrics ("true" or ""): unless `metrics: false`. */}}
{{- define "id77.hasMetrics" -}}
{{- if or (not (hasKey . "metrics")) .metrics }}true{{ end }}
{{- end }}

{{/* The variable a service reads its listen address from. */}}
{{- define "id77.addrEnv" -}}
{{- default (ternary "ID77_GRPC_ADDR" "ID77_HTTP_ADDR" (eq .kind "grpc")) .addrEnv }}
{{- end }}

{{/* Whether a service connects to NATS ("true" or ""): gRPC services unless natsUser.enabled is false; HTTP
services (the gateway's live updates) only when natsUser.enabled is true. */}}
{{- define "id77.usesNats" -}}
{{- $n := default dict .natsUser }}
{{- if eq .kind "grpc" }}
{{- if or (not (hasKey $n "enabled")) $n.enabled }}true{{ end }}
{{- else if $n.enabled }}true
{{- end }}
{{- end }}

{{/* Name of the Secret holding a service's database password (chart-made or existing); empty if none. */}}
{{- define "id77.dbSecretName" -}}
{{- $db := default dict .svc.database }}
{{- if $db.existingSecret }}
{{- $db.existingSecret }}
{{- else if $db.password }}
{{- printf "%s-db" (include "id77.componentFullname" (dict "root" .root "name" .name)) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding a service's NATS NKEY seed (key `nkey`); empty if none. */}}
{{- define "id77.natsSecretName" -}}
{{- $nats := default dict .svc.natsUser }}
{{- if $nats.existingSecret }}
{{- $nats.existingSecret }}
{{- else if $nats.seed }}
{{- printf "%s-nats" (include "id77.componentFullname" (dict "root" .root "name" .name)) }}
{{- end }}
{{- end }}

{{/* A service's database URL (without password). */}}
{{- define "id77.databaseUrl" -}}
{{- $db := .svc.database }}
{{- $pg := .root.Values.postgresql }}
{{- $url := printf "postgres://%s@%s:%v/%s" $db.user $pg.host $pg.port $db.name }}
{{- if $pg.params }}{{ $url = printf "%s?%s" $url $pg.params }}{{ end }}
{{- $url }}
{{- end }}

{{/* Pod-level scrape annotations. */}}
{{- define "id77.metricsAnnotations" -}}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
