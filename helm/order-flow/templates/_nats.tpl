{{/*
How a pod reaches NATS: the environment that catga::nats::NatsOptions::from_env
reads (NATS_URL, NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_CA,
NATS_CERT, NATS_KEY), with secrets taken from a Secret, never from plain env.
*/}}

{{- define "order-flow.natsAuthDir" -}}/etc/catga/nats-auth{{- end }}
{{- define "order-flow.natsTlsDir" -}}/etc/catga/nats-tls{{- end }}

{{- define "order-flow.natsEnv" -}}
- name: NATS_URL
  value: {{ .Values.nats.url | quote }}
{{- $auth := .Values.nats.auth }}
{{- $secret := include "order-flow.natsAuthSecret" . }}
{{- if eq $auth.type "userPassword" }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: user
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: password
{{- else if eq $auth.type "token" }}
- name: NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: token
{{- else if eq $auth.type "creds" }}
- name: NATS_CREDS
  value: {{ include "order-flow.natsAuthDir" . }}/nats.creds
{{- end }}
{{- if .Values.nats.tls.enabled }}
- name: NATS_CA
  value: {{ include "order-flow.natsTlsDir" . }}/ca.crt
{{- if .Values.nats.tls.clientCertificate }}
- name: NATS_CERT
  value: {{ include "order-flow.natsTlsDir" . }}/tls.crt
- name: NATS_KEY
  value: {{ include "order-flow.natsTlsDir" . }}/tls.key
{{- end }}
{{- end }}
{{- end }}

{{- define "order-flow.natsVolumeMounts" -}}
{{- if eq .Values.nats.auth.type "creds" }}
- name: nats-auth
  mountPath: {{ include "order-flow.natsAuthDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.enabled }}
- name: nats-tls
  mountPath: {{ include "order-flow.natsTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "order-flow.natsVolumes" -}}
{{- if eq .Values.nats.auth.type "creds" }}
- name: nats-auth
  secret:
    secretName: {{ include "order-flow.natsAuthSecret" . }}
    defaultMode: 0440
    items:
      - key: nats.creds
        path: nats.creds
{{- end }}
{{- if .Values.nats.tls.enabled }}
- name: nats-tls
  secret:
    secretName: {{ include "order-flow.natsTlsSecret" . }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
      {{- if .Values.nats.tls.clientCertificate }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- end }}
