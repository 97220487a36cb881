{{/*
NATS over TLS: the CA that signed the NATS server's certificate (nats.tls), mounted read-only at
/etc/id77/nats-ca/ca.crt and passed to the binary as ID77_NATS_CA_FILE (services/platform/src/config.rs; the
referral consumer's --nats-ca-file reads the same variable). With it every client requires TLS and trusts that CA.
Every workload that connects to NATS (the gRPC services, the gateway's live updates, the hosted referral consumers,
the ensure-consumers Job) uses the three below, like _postgresql.tpl's: the variable set to id77.natsCaFile when
that is not empty, id77.natsCaVolumeMount in its container's volumeMounts and id77.natsCaVolume in its pod's
volumes. Call each with the root context ($).
*/}}

{{/* The CA's path in the container, or "" when nats.tls names no CA. */}}
{{- define "id77.natsCaFile" -}}
{{- $ca := default dict .Values.nats.tls }}
{{- if or $ca.caSecret $ca.caConfigMap }}/etc/id77/nats-ca/ca.crt{{ end }}
{{- end }}

{{/* The container's volumeMounts entry (a list item at column 0), or "". */}}
{{- define "id77.natsCaVolumeMount" -}}
{{- if include "id77.natsCaFile" . }}
- name: nats-ca
  mountPath: /etc/id77/nats-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* The pod's volumes entry (a list item at column 0), or "": the CA's key from the Secret or ConfigMap. */}}
{{- define "id77.natsCaVolume" -}}
{{- if include "id77.natsCaFile" . }}
{{- $ca := .Values.nats.tls }}
- name: nats-ca
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
