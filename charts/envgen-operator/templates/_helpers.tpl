{{/* Chart name, at most 63 characters. */}}
{{- define "envgen-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name plus chart name, unless the release name already holds it. */}}
{{- define "envgen-operator.fullname" -}}
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

{{- define "envgen-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "envgen-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "envgen-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "envgen-operator.labels" -}}
helm.sh/chart: {{ include "envgen-operator.chart" . }}
{{ include "envgen-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: envgen
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "envgen-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "envgen-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "envgen-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "envgen-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* Rules for the watched namespaces: the same in a Role per namespace or in the ClusterRole. */}}
{{- define "envgen-operator.namespacedRules" -}}
- apiGroups: ["envgen.dev"]
  resources: ["envgenruns"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["envgen.dev"]
  resources: ["envgenruns/status"]
  verbs: ["get", "patch"]
# Children carry an ownerReference with blockOwnerDeletion, which OwnerReferencesPermissionEnforcement
# (on in OpenShift) allows only to who may update the owner's finalizers.
- apiGroups: ["envgen.dev"]
  resources: ["envgenruns/finalizers"]
  verbs: ["update"]
# EnvGenExperiments: read, status written; their runs (created above) are owned by them.
- apiGroups: ["envgen.dev"]
  resources: ["envgenexperiments"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["envgen.dev"]
  resources: ["envgenexperiments/status"]
  verbs: ["get", "patch"]
- apiGroups: ["envgen.dev"]
  resources: ["envgenexperiments/finalizers"]
  verbs: ["update"]
- apiGroups: ["envgen.dev"]
  resources: ["envgencycles"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["envgen.dev"]
  resources: ["envgencycles/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "create", "patch"]
{{- end }}
