{{/* SPDX-License-Identifier: Apache-2.0 */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
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

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the agent's pods; they never change across upgrades. */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* host:port for --metrics-addr; IPv6 literals get brackets. */}}
{{- define "sluice.metricsAddr" -}}
{{- $host := .Values.metrics.bindAddress }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int .Values.metrics.port) }}
{{- else }}
{{- printf "%s:%d" $host (int .Values.metrics.port) }}
{{- end }}
{{- end }}

{{/* Values the schema cannot express. */}}
{{- define "sluice.validate" -}}
{{- $bind := .Values.metrics.bindAddress }}
{{- if or (hasPrefix "127." $bind) (eq $bind "::1") (eq $bind "localhost") }}
{{- fail (printf "metrics.bindAddress %q is a loopback address: the kubelet probes /healthz on the node IP, use 0.0.0.0 or the node's address" $bind) }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: the ServiceMonitor selects the metrics Service" }}
{{- end }}
{{- if and .Values.kubernetes.serviceHost (not .Values.kubernetes.servicePort) }}
{{- fail "kubernetes.serviceHost is set but kubernetes.servicePort is not: set both or neither" }}
{{- end }}
{{- if and .Values.kubernetes.servicePort (not .Values.kubernetes.serviceHost) }}
{{- fail "kubernetes.servicePort is set but kubernetes.serviceHost is not: set both or neither" }}
{{- end }}
{{- if eq (dir .Values.bpfRoot) "/" }}
{{- fail (printf "bpfRoot %q must be a directory below a bpffs mount point, e.g. /sys/fs/bpf/sluice" .Values.bpfRoot) }}
{{- end }}
{{- end }}
