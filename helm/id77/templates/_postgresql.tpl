{{/*
PostgreSQL over TLS: the CA that signed the server's certificate (postgresql.tls, or a service's own
services.<name>.database.tls), mounted read-only at /etc/id77/postgresql/ca.crt and passed to the binary as
ID77_DATABASE_CA_FILE (services/platform/src/config.rs). Any workload that connects to PostgreSQL uses the three
below: the variable set to id77.postgresqlCaFile when that is not empty, id77.postgresqlCaVolumeMount in its
container's volumeMounts and id77.postgresqlCaVolume in its pod's volumes. Call each with (dict "root" $ "svc"
$svc): a service without `database` gets no CA; with (dict "root" $) alone: the shared CA (e.g. for a Job).
*/}}

{{/* The CA of a service (its own database.tls if it names one, else postgresql.tls), as JSON; "{}" if none. */}}
{{- define "id77.postgresqlCa" -}}
{{- $ca := dict }}
{{- $shared := default dict .root.Values.postgresql.tls }}
{{- $db := dict }}
{{- $usesDb := true }}
{{- if hasKey . "svc" }}
{{- $db = default dict .svc.database }}
{{- $usesDb = not (empty .svc.database) }}
{{- end }}
{{- $own := default dict $db.tls }}
{{- if $usesDb }}
{{- if or $own.caSecret $own.caConfigMap }}
{{- $ca = $own }}
{{- else if or $shared.caSecret $shared.caConfigMap }}
{{- $ca = $shared }}
{{- end }}
{{- end }}
{{- toJson $ca }}
{{- end }}

{{/* The CA file's path in the container, or "" when there is no CA. */}}
{{- define "id77.postgresqlCaFile" -}}
{{- $ca := include "id77.postgresqlCa" . | fromJson }}
{{- if $ca }}/etc/id77/postgresql/ca.crt{{ end }}
{{- end }}

{{/* The container's volumeMounts entry (a list item at column 0), or "". */}}
{{- define "id77.postgresqlCaVolumeMount" -}}
{{- if include "id77.postgresqlCaFile" . }}
- name: postgresql-ca
  mountPath: /etc/id77/postgresql
  readOnly: true
{{- end }}
{{- end }}

{{/* The pod's volumes entry (a list item at column 0), or "": the CA's key from the Secret or ConfigMap. */}}
{{- define "id77.postgresqlCaVolume" -}}
{{- $ca := include "id77.postgresqlCa" . | fromJson }}
{{- if $ca }}
- name: postgresql-ca
  {{- if $ca.caSecret }}
  secret:
    secretName: {{ $ca.caSecret }}
  {{- else }}
  configMap:
    name: {{ $ca.caConfigMap }}
  {{- end }}
    defaultMode: 0444
    items:
      - key: {{ default "ca.crt" $ca.caKey }}
        path: ca.crt
{{- end }}
{{- end }}
