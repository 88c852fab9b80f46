{{/* Chart name, truncated to the 63 characters DNS labels allow. */}}
{{- define "tool-registry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, plus the chart name unless it already contains it. */}}
{{- define "tool-registry.fullname" -}}
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

{{- define "tool-registry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tool-registry.commonLabels" -}}
helm.sh/chart: {{ include "tool-registry.chart" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tool-registry
{{- end }}

{{- define "tool-registry.labels" -}}
{{ include "tool-registry.commonLabels" . }}
{{ include "tool-registry.selectorLabels" . }}
{{- end }}

{{- define "tool-registry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tool-registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}

{{- define "tool-registry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tool-registry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tool-registry.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* Name of the Secret holding DATABASE_URL / ADMIN_API_KEYS / EMBEDDING_API_KEY. */}}
{{- define "tool-registry.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "tool-registry.fullname" .)) }}
{{- end }}

{{/* Is a PostgreSQL configured (bundled, in values, or possibly in an existing Secret)? */}}
{{- define "tool-registry.hasDatabase" -}}
{{- if or .Values.postgresql.enabled .Values.secrets.databaseUrl .Values.secrets.existingSecret }}true{{- end }}
{{- end }}

{{/* MCP_ALLOWED_HOSTS: mcp.allowedHostsOverride as is; otherwise the configured extra
     hosts, the ingress hosts (wildcards cannot be matched: list the names instead),
     the Service's in-cluster names and loopback (kubectl port-forward). */}}
{{- define "tool-registry.mcpAllowedHosts" -}}
{{- if .Values.mcp.allowedHostsOverride }}
{{- .Values.mcp.allowedHostsOverride }}
{{- else }}
{{- $fullname := include "tool-registry.fullname" . }}
{{- $namespace := .Release.Namespace }}
{{- $hosts := list }}
{{- range .Values.mcp.allowedHosts }}
{{- $hosts = append $hosts . }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- if and .host (not (hasPrefix "*" .host)) }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- end }}
{{- $hosts = append $hosts $fullname }}
{{- $hosts = append $hosts (printf "%s.%s" $fullname $namespace) }}
{{- $hosts = append $hosts (printf "%s.%s.svc" $fullname $namespace) }}
{{- $hosts = append $hosts (printf "%s.%s.svc.%s" $fullname $namespace (.Values.clusterDomain | default "cluster.local")) }}
{{- $hosts = concat $hosts (list "localhost" "127.0.0.1" "::1") }}
{{- $hosts | uniq | join "," }}
{{- end }}
{{- end }}

{{/* Bundled PostgreSQL. */}}
{{- define "tool-registry.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "tool-registry.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tool-registry.postgresql.labels" -}}
{{ include "tool-registry.commonLabels" . }}
{{ include "tool-registry.postgresql.selectorLabels" . }}
{{- end }}

{{- define "tool-registry.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tool-registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end }}

{{/* The bundled server's password: from values, else the one already in the cluster, else a new random one. */}}
{{- define "tool-registry.postgresql.password" -}}
{{- if .Values.postgresql.auth.password }}
{{- .Values.postgresql.auth.password }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "tool-registry.postgresql.fullname" .) }}
{{- if and $existing $existing.data (hasKey $existing.data "POSTGRES_PASSWORD") }}
{{- index $existing.data "POSTGRES_PASSWORD" | b64dec }}
{{- else }}
{{- randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment shared by the API and the migrate init container. */}}
{{- define "tool-registry.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "tool-registry.fullname" . }}
  - secretRef:
      # Not optional: with existingSecret, a missing Secret must stop the
      # pod rather than start it without its DATABASE_URL.
      name: {{ include "tool-registry.secretName" . }}
{{- if .Values.postgresql.enabled }}
env:
  - name: POSTGRES_PASSWORD
    valueFrom:
      secretKeyRef:
        name: {{ include "tool-registry.postgresql.fullname" . }}
        key: POSTGRES_PASSWORD
  # Kubernetes expands $(POSTGRES_PASSWORD) from the variable above.
  - name: DATABASE_URL
    value: {{ printf "postgres://%s:$(POSTGRES_PASSWORD)@%s:5432/%s" .Values.postgresql.auth.username (include "tool-registry.postgresql.fullname" .) .Values.postgresql.auth.database | quote }}
{{- end }}
{{- end }}

{{/* Volume mounts shared by the API and the migrate init container. */}}
{{- define "tool-registry.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /data
{{- if .Values.model.existingClaim }}
- name: model
  mountPath: {{ .Values.config.embedding.modelDir }}
  readOnly: true
  {{- with .Values.model.subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
