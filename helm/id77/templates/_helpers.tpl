{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "id77.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release; component names are appended to it, so it leaves room for them. */}}
{{- define "id77.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "id77.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of a component's objects. Call with (dict "root" $ "name" $name). */}}
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

{{/* Selector labels of a component. Call with (dict "root" $ "name" $name). */}}
{{- define "id77.selectorLabels" -}}
app.kubernetes.io/name: {{ include "id77.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* Labels of a component's objects. Call with (dict "root" $ "name" $name). */}}
{{- define "id77.componentLabels" -}}
{{ include "id77.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "id77.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "id77.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "id77.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "id77.configmapName" -}}
{{- printf "%s-config" (include "id77.fullname" .) }}
{{- end }}

{{/* Environment variable naming a gRPC component's address for the gateway, e.g. ID77_MEMBERSHIP_URL. */}}
{{- define "id77.upstreamEnvName" -}}
{{- printf "ID77_%s_URL" (. | upper | replace "-" "_") }}
{{- end }}
