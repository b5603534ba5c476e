{{/*
Names and labels, and the resolution of one entry of `services` over
`serviceDefaults`.
*/}}

{{- define "order-flow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-order-flow, or the release name when it already holds the chart's name. */}}
{{- define "order-flow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The objects of one service: <fullname>-<key>. Args: (list $ $key). */}}
{{- define "order-flow.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "order-flow.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "order-flow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "order-flow.labels" -}}
helm.sh/chart: {{ include "order-flow.chart" . }}
{{ include "order-flow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: catga
{{- end }}

{{- define "order-flow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "order-flow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one service's objects. Args: (list $ $key). */}}
{{- define "order-flow.componentLabels" -}}
{{ include "order-flow.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* Selector of one service's pods. Args: (list $ $key). */}}
{{- define "order-flow.componentSelector" -}}
{{ include "order-flow.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "order-flow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "order-flow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Resolves services.<key> over serviceDefaults into the dict `out`: the entry's
keys replace the defaults, maps are merged at every depth. Written out
instead of sprig's merge, which would treat `enabled: false` and
`replicas: 0` as "unset" and take the default.
Args: (dict "root" $ "key" $key "out" $dict).
*/}}
{{- define "order-flow.resolve" -}}
{{- $entry := index .root.Values.services .key | default dict }}
{{- range $k, $v := deepCopy .root.Values.serviceDefaults }}
{{- $_ := set $.out $k $v }}
{{- end }}
{{- include "order-flow.overlay" (dict "dst" .out "src" (deepCopy $entry)) }}
{{- if not .out.role }}
{{- $_ := set .out "role" .key }}
{{- end }}
{{- end }}

{{/* Sets every key of map src into map dst, recursing where both hold a map. */}}
{{- define "order-flow.overlay" -}}
{{- $dst := .dst }}
{{- range $k, $v := .src }}
{{- $base := index $dst $k }}
{{- if and (kindIs "map" $v) (kindIs "map" $base) }}
{{- include "order-flow.overlay" (dict "dst" $base "src" $v) }}
{{- else }}
{{- $_ := set $dst $k $v }}
{{- end }}
{{- end }}
{{- end }}

{{/* The image reference of a resolved service. Args: (dict "root" $ "svc" $svc). */}}
{{- define "order-flow.image" -}}
{{- $img := .svc.image | default dict }}
{{- $repo := $img.repository | default .root.Values.image.repository }}
{{- $tag := $img.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repo (toString $tag) }}
{{- end }}

{{/* Name of the Secret holding NATS credentials. */}}
{{- define "order-flow.natsAuthSecret" -}}
{{- .Values.nats.auth.existingSecret | default (printf "%s-nats-auth" (include "order-flow.fullname" .)) }}
{{- end }}

{{/* Name of the Secret holding the NATS TLS material. */}}
{{- define "order-flow.natsTlsSecret" -}}
{{- .Values.nats.tls.existingSecret | default (printf "%s-nats-tls" (include "order-flow.fullname" .)) }}
{{- end }}

{{/*
Checks that need more than one value (the schema checks each value alone).
Called by every template that depends on them, so `helm template -s` fails too.
*/}}
{{- define "order-flow.validate" -}}
{{- $root := . }}
{{- range $key, $_ := .Values.services }}
{{- $svc := dict }}
{{- include "order-flow.resolve" (dict "root" $root "key" $key "out" $svc) }}
{{- if $svc.enabled }}
{{- $needed := add $svc.preStopSleepSeconds 20 }}
{{- if lt (int $svc.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "services.%s: terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + 20 (%v): the services need up to 20 s to stop in order after SIGTERM" $key $svc.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- if and $svc.autoscaling.enabled (gt (int $svc.autoscaling.minReplicas) (int $svc.autoscaling.maxReplicas)) }}
{{- fail (printf "services.%s.autoscaling: minReplicas (%v) is greater than maxReplicas (%v)" $key $svc.autoscaling.minReplicas $svc.autoscaling.maxReplicas) }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- include "order-flow.requireExposed" (dict "root" . "key" .Values.ingress.service "what" "ingress.service") }}
{{- end }}
{{- if .Values.tests.enabled }}
{{- include "order-flow.requireExposed" (dict "root" . "key" .Values.tests.service "what" "tests.service") }}
{{- end }}
{{- end }}

{{/* Fails unless services.<key> exists, is enabled and has a Service. */}}
{{- define "order-flow.requireExposed" -}}
{{- if not (hasKey .root.Values.services .key) }}
{{- fail (printf "%s: there is no services.%s" .what .key) }}
{{- end }}
{{- $svc := dict }}
{{- include "order-flow.resolve" (dict "root" .root "key" .key "out" $svc) }}
{{- if not (and $svc.enabled $svc.service.enabled) }}
{{- fail (printf "%s: services.%s must be enabled and have service.enabled: true" .what .key) }}
{{- end }}
{{- end }}
