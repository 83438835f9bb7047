{{/* Names, labels and the pieces every quantops pod shares. */}}

{{- define "quantops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "quantops.fullname" -}}
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

{{/* "<fullname>-<component>", e.g. quantops-gateway. Call with (list $ "gateway"). */}}
{{- define "quantops.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "quantops.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) }}
{{- end }}

{{- define "quantops.labels" -}}
app.kubernetes.io/name: {{ include "quantops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "quantops.releaseLabels" . }}
{{- end }}

{{/* The labels that are not selectors (pod templates add them to the selector labels). */}}
{{- define "quantops.releaseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quantops
{{- end }}

{{/* Selector labels of one component. Call with (list $ "gateway"). */}}
{{- define "quantops.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "quantops.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "quantops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "quantops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "quantops.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "quantops.natsSecretName" -}}
{{- default (printf "%s-nats-auth" (include "quantops.fullname" .)) .Values.nats.auth.existingSecret }}
{{- end }}

{{- define "quantops.gatewaySecretName" -}}
{{- default (printf "%s-gateway-auth" (include "quantops.fullname" .)) .Values.gateway.auth.existingSecret }}
{{- end }}

{{- define "quantops.natsUrl" -}}
{{- if .Values.nats.external.url }}
{{- .Values.nats.external.url }}
{{- else }}
{{- printf "%s://%s:4222" (ternary "tls" "nats" .Values.nats.tls.enabled) (include "quantops.componentName" (list . "nats")) }}
{{- end }}
{{- end }}

{{/* The users of the permission model (files/permissions.json, from shared/natsauth.py). */}}
{{- define "quantops.natsUsers" -}}
{{- $doc := .Files.Get "files/permissions.json" | fromJson }}
{{- keys $doc.users | sortAlpha | toJson }}
{{- end }}

{{/*
One user's permissions in nats-server syntax. Not toJson: Go's JSON encoder writes ">" as
\u003e, an escape nats-server's config parser does not read.
*/}}
{{- define "quantops.natsPermissions" -}}
{{- $parts := list }}
{{- range $verb := list "publish" "subscribe" }}
{{- with index $ $verb }}
{{- $grants := . }}
{{- $rules := list }}
{{- range $kind := list "allow" "deny" }}
{{- with index $grants $kind }}
{{- $quoted := list }}
{{- range . }}{{ $quoted = append $quoted (quote .) }}{{ end }}
{{- $rules = append $rules (printf "%s: [%s]" $kind (join ", " $quoted)) }}
{{- end }}
{{- end }}
{{- $parts = append $parts (printf "%s: {%s}" $verb (join ", " $rules)) }}
{{- end }}
{{- end }}
{{- printf "{%s}" (join ", " $parts) }}
{{- end }}

{{/*
The environment of one service container: the settings of shared/settings.py, its own NATS
user, and OpenTelemetry. Call with (list $ "executor" $componentValues).
*/}}
{{- define "quantops.env" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $c := index . 2 -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: POD_UID
  valueFrom: {fieldRef: {fieldPath: metadata.uid}}
- name: QUANTOPS_NATS_URL
  value: {{ include "quantops.natsUrl" $root | quote }}
- name: QUANTOPS_NATS_USER
  value: {{ $name | quote }}
{{- if and $root.Values.nats.tls.enabled (not $root.Values.nats.external.url) }}
- name: QUANTOPS_NATS_TLS_CA
  value: /etc/quantops/nats-tls/ca.crt
{{- end }}
- name: QUANTOPS_NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "quantops.natsSecretName" $root }}
      key: {{ printf "%s-password" $name }}
- name: QUANTOPS_BUS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "quantops.natsSecretName" $root }}
      key: bus-key
- name: QUANTOPS_STREAM_REPLICAS
  value: {{ $root.Values.nats.streamReplicas | quote }}
{{- /* Health and the storage alerts measure JetStream use against this reservation. */}}
- name: QUANTOPS_NATS_MAX_FILE_STORE
  value: {{ include "quantops.natsBytes" $root.Values.nats.jetstream.maxFileStore | quote }}
- name: QUANTOPS_DATA_DIR
  value: {{ $root.Values.config.dataDir | quote }}
- name: QUANTOPS_METRICS_PORT
  value: {{ $root.Values.config.metricsPort | quote }}
{{- /* Loopback is the embedded default; in a pod, Prometheus scrapes the pod IP. */}}
- name: QUANTOPS_METRICS_HOST
  value: "0.0.0.0"
- name: QUANTOPS_LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
- name: QUANTOPS_LOG_FORMAT
  value: {{ $root.Values.config.logFormat | quote }}
- name: QUANTOPS_REQUEST_TIMEOUT_S
  value: {{ $root.Values.config.requestTimeoutSeconds | quote }}
{{- if $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.otel.endpoint | quote }}
{{- end }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.otel.samplingRatio | quote }}
{{- $attrs := list "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.pod.name=$(POD_NAME)" "service.instance.id=$(POD_UID)" }}
{{- range $k, $v := $root.Values.otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- if eq $name "gateway" }}
{{- /* Loopback is the embedded default; in a pod the Service reaches the pod IP. */}}
- name: QUANTOPS_GATEWAY_HOST
  value: "0.0.0.0"
- name: QUANTOPS_GATEWAY_PORT
  value: {{ $root.Values.gateway.port | quote }}
- name: QUANTOPS_GATEWAY_AUTH_STORE
  value: {{ $root.Values.gateway.authStore | quote }}
- name: QUANTOPS_GATEWAY_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "quantops.gatewaySecretName" $root }}
      key: jwt-secret
- name: QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "quantops.gatewaySecretName" $root }}
      key: bootstrap-api-key
{{- end }}
{{- if eq $name "executor" }}
- name: QUANTOPS_EXECUTOR_SHUTDOWN_GRACE_S
  value: {{ $c.shutdownGraceSeconds | quote }}
{{- end }}
{{- range $k, $v := $c.env }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- with $root.Values.config.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Probes. The gateway answers /healthz (process alive) and /readyz (NATS and every service
answer) over HTTP. The backends answer health only over NATS, so:
- startup and liveness: GET /metrics on the metrics port. It is served by its own thread, so
  it proves the process is up without depending on NATS: a NATS outage must not restart every
  pod (that would only add a reconnect storm to the outage).
- readiness: the process reports itself connected to NATS (quantops_up{service} 1 on its own
  metrics page), checked by a few lines of Python in the image: no NATS round trip and no
  second client connection per probe, unlike `quantops status`. Readiness gates rollouts and
  PDB accounting for these pods (they receive work through NATS queue groups, not Services).
*/}}
{{- define "quantops.probes" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- if eq $name "gateway" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: {{ $root.Values.gateway.readinessPath }}, port: http}
  periodSeconds: 5
  timeoutSeconds: 4
  failureThreshold: 2
{{- else -}}
startupProbe:
  httpGet: {path: /metrics, port: metrics}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /metrics, port: metrics}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  exec:
    command:
      - python
      - -c
      - {{ printf "import sys, urllib.request as u; t = u.urlopen('http://127.0.0.1:%v/metrics', timeout=2).read().decode(); sys.exit(0 if 'quantops_up{service=\"%s\"} 1.0' in t else 1)" $root.Values.config.metricsPort $name | quote }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 2
{{- end }}
{{- end }}

{{/*
The pod template of one service. Call with (list $ "executor" $componentValues).
*/}}
{{- define "quantops.podTemplate" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $c := index . 2 -}}
metadata:
  labels:
    {{- include "quantops.selectorLabels" (list $root $name) | nindent 4 }}
    {{- include "quantops.releaseLabels" $root | nindent 4 }}
  annotations:
    {{- /* Restart the pods when their NATS password or the gateway's keys change. */}}
    checksum/nats-auth: {{ include (print $root.Template.BasePath "/secrets.yaml") $root | sha256sum }}
    {{- with $c.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "quantops.serviceAccountName" $root }}
  automountServiceAccountToken: {{ $root.Values.automountServiceAccountToken }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ if eq $name "executor" }}{{ add $c.shutdownGraceSeconds 20 }}{{ else }}{{ $c.terminationGracePeriodSeconds }}{{ end }}
  containers:
    - name: {{ $name }}
      image: {{ include "quantops.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["serve", {{ $name | quote }}]
      env:
        {{- include "quantops.env" (list $root $name $c) | nindent 8 }}
      ports:
        {{- if eq $name "gateway" }}
        - name: http
          containerPort: {{ $root.Values.gateway.port }}
          protocol: TCP
        {{- end }}
        - name: metrics
          containerPort: {{ $root.Values.config.metricsPort }}
          protocol: TCP
      {{- include "quantops.probes" (list $root $name) | nindent 6 }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        - name: data
          mountPath: {{ $root.Values.config.dataDir }}
        {{- if and $root.Values.nats.tls.enabled (not $root.Values.nats.external.url) }}
        - name: nats-tls
          mountPath: /etc/quantops/nats-tls
          readOnly: true
        {{- end }}
  volumes:
    {{- if and $root.Values.nats.tls.enabled (not $root.Values.nats.external.url) }}
    {{- /* Only the CA: the services verify the server, they present no certificate. */}}
    - name: nats-tls
      secret:
        secretName: {{ $root.Values.nats.tls.secretName }}
        items: [{key: ca.crt, path: ca.crt}]
    {{- end }}
    {{- /* The root filesystem is read-only: Python, the worker pool and uploads use /tmp. */}}
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.config.scratchSizeLimit }}
    {{- if ne $name "registry" }}
    - name: data
      emptyDir:
        sizeLimit: {{ $root.Values.config.scratchSizeLimit }}
    {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $c.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $c.topologySpreadConstraints | nindent 4 }}
  {{- else if ne $name "registry" }}
  {{- /* Replicas on different nodes when the cluster allows it, without blocking scheduling. */}}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "quantops.selectorLabels" (list $root $name) | nindent 10 }}
  {{- end }}
{{- end }}

{{- /*
A nats-server size ("18G", "256MiB", "8MB", bytes) in bytes, as nats-server reads it (K, M, G, T
and P are powers of 1024).
*/}}
{{- define "quantops.natsBytes" -}}
{{- $s := upper (toString .) -}}
{{- $n := regexFind "^[0-9]+" $s | int64 -}}
{{- $unit := trimSuffix "B" (trimSuffix "IB" (regexReplaceAll "^[0-9]+" $s "")) -}}
{{- $powers := dict "" 0 "K" 1 "M" 2 "G" 3 "T" 4 "P" 5 -}}
{{- $bytes := $n -}}
{{- range until (int (get $powers $unit)) }}{{ $bytes = mul $bytes 1024 }}{{ end -}}
{{- $bytes -}}
{{- end -}}
