{{/*
Names, labels and the few derived values every template shares.
*/}}

{{- define "anesbench.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated so that "<fullname>-<component>" stays a valid DNS label.
*/}}
{{- define "anesbench.fullname" -}}
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

{{- define "anesbench.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "anesbench.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anesbench.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "anesbench.labels" -}}
helm.sh/chart: {{ include "anesbench.chart" . }}
{{ include "anesbench.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: anesbench
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels and selector labels of one component. Call with (dict "ctx" $ "component" "dispatcher").
*/}}
{{- define "anesbench.componentLabels" -}}
{{ include "anesbench.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "anesbench.componentSelectorLabels" -}}
{{ include "anesbench.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "anesbench.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "anesbench.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The anesbench image reference: repository[:tag][@digest]; the tag defaults to the chart's appVersion.
*/}}
{{- define "anesbench.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "anesbench.dispatcher.fullname" -}}
{{- printf "%s-dispatcher" (include "anesbench.fullname" .) }}
{{- end }}

{{- define "anesbench.grader.fullname" -}}
{{- printf "%s-grader" (include "anesbench.fullname" .) }}
{{- end }}

{{- define "anesbench.standin.fullname" -}}
{{- printf "%s-standin" (include "anesbench.fullname" .) }}
{{- end }}

{{- define "anesbench.runtime.name" -}}
{{- default (printf "%s-sglang" (include "anesbench.fullname" .)) .Values.sglang.runtimeName }}
{{- end }}

{{- define "anesbench.dispatcher.address" -}}
{{- printf "%s.%s.svc:%d" (include "anesbench.dispatcher.fullname" .) .Release.Namespace (int .Values.dispatcher.port) }}
{{- end }}

{{- define "anesbench.grader.address" -}}
{{- printf "%s.%s.svc:%d" (include "anesbench.grader.fullname" .) .Release.Namespace (int .Values.grader.port) }}
{{- end }}

{{/*
Whether the cluster offers an API group/version, or the chart is told to render its kinds anyway.
Call with (dict "ctx" $ "api" "monitoring.coreos.com/v1" "force" true).
*/}}
{{- define "anesbench.hasAPI" -}}
{{- if or .force (.ctx.Capabilities.APIVersions.Has .api) }}true{{ end }}
{{- end }}

{{- define "anesbench.kserve.enabled" -}}
{{- $sr := include "anesbench.hasAPI" (dict "ctx" . "api" "serving.kserve.io/v1alpha1" "force" .Values.sglang.force) }}
{{- $isvc := include "anesbench.hasAPI" (dict "ctx" . "api" "serving.kserve.io/v1beta1" "force" .Values.sglang.force) }}
{{- if and .Values.sglang.enabled $sr $isvc }}true{{ end }}
{{- end }}

{{- define "anesbench.monitoring.enabled" -}}
{{- include "anesbench.hasAPI" (dict "ctx" . "api" "monitoring.coreos.com/v1" "force" .Values.monitoring.force) }}
{{- end }}

{{/*
Name of the InferenceService serving one entry of `models:`.
*/}}
{{- define "anesbench.isvc.name" -}}
{{- printf "%s-%s" (include "anesbench.fullname" .ctx | trunc 20 | trimSuffix "-") .model.name | trunc 45 | trimSuffix "-" }}
{{- end }}

{{/*
In-cluster OpenAI base URL of one InferenceService (the predictor Service KServe creates).
*/}}
{{- define "anesbench.isvc.url" -}}
{{- printf "http://%s-predictor.%s.svc.%s/v1" (include "anesbench.isvc.name" .) .ctx.Release.Namespace .ctx.Values.clusterDomain }}
{{- end }}

{{- define "anesbench.standin.url" -}}
{{- printf "http://%s.%s.svc.%s:%d/v1" (include "anesbench.standin.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.standin.port) }}
{{- end }}

{{/*
Every endpoint a schedule may name, as JSON: {"<name>": {"url": ..., "model": ...}}.
Fails on a name defined twice.
*/}}
{{- define "anesbench.endpoints" -}}
{{- $endpoints := dict }}
{{- $kserve := include "anesbench.kserve.enabled" . }}
{{- range .Values.models }}
{{- if hasKey $endpoints .name }}{{ fail (printf "models: the name %q is used twice" .name) }}{{ end }}
{{- $_ := set $endpoints .name (dict "url" (include "anesbench.isvc.url" (dict "ctx" $ "model" .)) "model" .name "isvc" (ternary (include "anesbench.isvc.name" (dict "ctx" $ "model" .)) "" (not (empty $kserve))) "scoring" (default "" .scoring)) }}
{{- end }}
{{- range .Values.externalEndpoints }}
{{- if hasKey $endpoints .name }}{{ fail (printf "externalEndpoints: the name %q is already used by another model or endpoint" .name) }}{{ end }}
{{- $_ := set $endpoints .name (dict "url" (trimSuffix "/" .url) "model" (default .name .model) "scoring" (default "" .scoring)) }}
{{- end }}
{{- if .Values.standin.enabled }}
{{- if hasKey $endpoints "standin" }}{{ fail "the name \"standin\" is reserved for the stand-in model server" }}{{ end }}
{{- $_ := set $endpoints "standin" (dict "url" (include "anesbench.standin.url" .) "model" .Values.standin.modelName) }}
{{- end }}
{{- toJson $endpoints }}
{{- end }}

{{/*
URL prefixes the dispatcher accepts: every in-cluster model, every external endpoint, the stand-in,
then the extra prefixes from values.
*/}}
{{- define "anesbench.allowedEndpoints" -}}
{{- $prefixes := list }}
{{- range $name, $endpoint := include "anesbench.endpoints" . | fromJson }}
{{- $prefixes = append $prefixes $endpoint.url }}
{{- end }}
{{- $prefixes = concat $prefixes .Values.dispatcher.allowedEndpoints | uniq }}
{{- toJson $prefixes }}
{{- end }}

{{- define "anesbench.datasets.claimName" -}}
{{- default (printf "%s-datasets" (include "anesbench.fullname" .)) .Values.datasets.existingClaim }}
{{- end }}

{{- define "anesbench.dispatcher.claimName" -}}
{{- default (printf "%s-db" (include "anesbench.dispatcher.fullname" .)) .Values.dispatcher.persistence.existingClaim }}
{{- end }}

{{/*
Pod-level security context shared by every anesbench pod: podSecurityContext when set, else ours
(without fixed UIDs when security.fixedUids is false, e.g. for OpenShift's restricted-v2).
*/}}
{{- define "anesbench.podSecurityContext" -}}
{{- if .Values.podSecurityContext }}
{{- toYaml .Values.podSecurityContext }}
{{- else }}
runAsNonRoot: true
{{- if .Values.security.fixedUids }}
runAsUser: {{ .Values.security.uid }}
runAsGroup: {{ .Values.security.uid }}
fsGroup: {{ .Values.security.uid }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- end }}

{{/*
Container-level security context shared by every anesbench container (containerSecurityContext when set).
*/}}
{{- define "anesbench.containerSecurityContext" -}}
{{- if .Values.containerSecurityContext }}
{{- toYaml .Values.containerSecurityContext }}
{{- else }}
runAsNonRoot: true
{{- if .Values.security.fixedUids }}
runAsUser: {{ .Values.security.uid }}
runAsGroup: {{ .Values.security.uid }}
{{- end }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- end }}

{{/*
What the dispatcher may do with inferenceservices, as a JSON list of verbs ("[]": nothing, and then
no ServiceAccount token, Role or RoleBinding): get/list/watch when a schedule runs an in-cluster
model (it waits for Ready), plus patch when a model is on demand (it starts and stops it).
*/}}
{{- define "anesbench.kube.verbs" -}}
{{- $verbs := list }}
{{- if include "anesbench.kserve.enabled" . }}
{{- $models := dict }}
{{- $patch := false }}
{{- range .Values.models }}
{{- $_ := set $models .name true }}
{{- if .onDemand }}{{ $patch = true }}{{ end }}
{{- end }}
{{- $read := $patch }}
{{- range .Values.schedules }}
{{- if hasKey $models .model }}{{ $read = true }}{{ end }}
{{- end }}
{{- if $read }}{{ $verbs = list "get" "list" "watch" }}{{ end }}
{{- if $patch }}{{ $verbs = append $verbs "patch" }}{{ end }}
{{- end }}
{{- toJson $verbs }}
{{- end }}

{{- define "anesbench.dispatcher.serviceAccountName" -}}
{{- if .Values.dispatcher.rbac.create }}
{{- include "anesbench.dispatcher.fullname" . }}
{{- else }}
{{- required "dispatcher.rbac.serviceAccountName: needed when dispatcher.rbac.create is false and the dispatcher drives InferenceServices" .Values.dispatcher.rbac.serviceAccountName }}
{{- end }}
{{- end }}

{{/*
Environment every anesbench container gets: caches under the writable /tmp.
*/}}
{{- define "anesbench.commonEnv" -}}
- name: HOME
  value: /tmp
- name: HF_HOME
  value: /tmp/huggingface
- name: PYTHONUNBUFFERED
  value: "1"
{{- end }}

{{- define "anesbench.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.security.tmpSizeLimit }}
{{- end }}

{{- define "anesbench.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Authentication and TLS: which Secrets hold the tokens and the certificate, and where pods mount them.
Tokens are files (never environment variables: `kubectl describe`, crash dumps and child processes
show those).
*/}}
{{- define "anesbench.auth.enabled" -}}
{{- if not .Values.dispatcher.auth.insecureDisable }}true{{ end }}
{{- end }}

{{- define "anesbench.tokens.secretName" -}}
{{- default (printf "%s-tokens" (include "anesbench.fullname" .)) .Values.dispatcher.auth.existingSecret }}
{{- end }}

{{- define "anesbench.tls.secretName" -}}
{{- default (printf "%s-tls" (include "anesbench.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{- define "anesbench.tokensDir" -}}/var/run/anesbench/tokens{{- end }}
{{- define "anesbench.tlsDir" -}}/var/run/anesbench/tls{{- end }}

{{/*
A volume of some of the token Secret's keys. Call with (dict "ctx" $ "roles" (list "runner" "reader" "grader")):
each role becomes the file of its name.
*/}}
{{- define "anesbench.tokensVolume" -}}
{{- $auth := .ctx.Values.dispatcher.auth }}
{{- $keys := dict "runner" $auth.key "reader" $auth.readerKey "grader" $auth.graderKey }}
- name: tokens
  secret:
    secretName: {{ include "anesbench.tokens.secretName" .ctx | quote }}
    defaultMode: 0440
    items:
      {{- range .roles }}
      - key: {{ get $keys . | quote }}
        path: {{ . }}
      {{- end }}
{{- end }}

{{/*
A volume of some of the TLS Secret's keys. Call with (dict "ctx" $ "keys" (list "ca.crt")).
*/}}
{{- define "anesbench.tlsVolume" -}}
- name: tls
  secret:
    secretName: {{ include "anesbench.tls.secretName" .ctx | quote }}
    defaultMode: 0440
    items:
      {{- range .keys }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- end }}

{{/*
What a client of the dispatcher (a CronJob's `anesbench run`) needs: its CA and the runner token.
*/}}
{{- define "anesbench.dispatcherClientArgs" -}}
{{- if .Values.tls.enabled }}
- --dispatcher-ca
- {{ printf "%s/ca.crt" (include "anesbench.tlsDir" .) }}
{{- end }}
{{- if include "anesbench.auth.enabled" . }}
- --dispatcher-token-file
- {{ printf "%s/runner" (include "anesbench.tokensDir" .) }}
{{- end }}
{{- end }}

{{- define "anesbench.dispatcherClientMounts" -}}
{{- if include "anesbench.auth.enabled" . }}
- name: tokens
  mountPath: {{ include "anesbench.tokensDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "anesbench.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "anesbench.dispatcherClientVolumes" -}}
{{- if include "anesbench.auth.enabled" . }}
{{ include "anesbench.tokensVolume" (dict "ctx" . "roles" (list "runner")) }}
{{- end }}
{{- if .Values.tls.enabled }}
{{ include "anesbench.tlsVolume" (dict "ctx" . "keys" (list "ca.crt")) }}
{{- end }}
{{- end }}

{{/*
An egress rule to some CIDRs and ports; every 0.0.0.0/0 loses the `except` CIDRs (cloud metadata, and
the API server for every pod but the dispatcher). Call with (dict "egress" {cidrs, ports} "except" list).
*/}}
{{- define "anesbench.np.cidrRule" -}}
- to:
    {{- range .egress.cidrs }}
    - ipBlock:
        cidr: {{ . }}
        {{- if and (eq . "0.0.0.0/0") $.except }}
        except:
          {{- toYaml (uniq $.except) | nindent 10 }}
        {{- end }}
    {{- end }}
  ports:
    {{- range .egress.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
