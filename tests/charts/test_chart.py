"""The envgen-operator Helm chart: lint, rendered objects, values schema, CRDs and the Grafana dashboard.

Runs the static helm binary that scripts/install_k8s_tools.sh caches (or one on PATH), offline, with its cache,
config and data homes in a temporary folder.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from envgen.k8s.jobs import POD_SECURITY_ENV, default_pod_security
from envgen.spec import PodSecuritySpec

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "envgen-operator"
DASHBOARD = CHART / "dashboards" / "envgen-operator.json"
RELEASE, RELEASE_NS = "egr", "envgen-system"
GROUP = "envgen.dev"

Obj = dict[str, Any]

# What the operator exports (family names; counters end in _total as exposed).
OPERATOR_METRICS = {
    "envgen_cycles_completed_total",
    "envgen_training_jobs_created_total",
    "envgen_training_jobs_failed_total",
    "envgen_llm_requests_total",
    "envgen_llm_tokens_total",
    "envgen_cycle_duration_seconds",
    "envgen_llm_request_duration_seconds",
    "envgen_run_info",
    "envgen_run_condition",
    "envgen_run_current_cycle",
    "envgen_run_score",
    "envgen_skill_success_ratio",
    "envgen_experiment_arm_seeds_finished",
    "envgen_experiment_arm_score",
    "envgen_experiment_arm_difference",
    "envgen_experiment_arm_p_value",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Least privilege: exactly these (apiGroup, resource) -> verbs in each watched namespace.
NAMESPACED_RULES = {
    (GROUP, "envgenruns"): {"get", "list", "watch", "create", "patch"},
    (GROUP, "envgenexperiments"): {"get", "list", "watch"},
    (GROUP, "envgenexperiments/status"): {"get", "patch"},
    (GROUP, "envgenexperiments/finalizers"): {"update"},
    (GROUP, "envgenruns/status"): {"get", "patch"},
    (GROUP, "envgenruns/finalizers"): {"update"},
    (GROUP, "envgencycles"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    (GROUP, "envgencycles/status"): {"get", "update", "patch"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "configmaps"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "persistentvolumeclaims"): {"get", "list", "watch", "create", "delete"},
    ("", "secrets"): {"get"},
    ("", "events"): {"list", "create", "patch"},
}
CLUSTER_ONLY_RULES = {
    ("", "namespaces"): {"list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
}


def _find_helm() -> str | None:
    cached = Path(os.environ.get("ENVGEN_CACHE", Path.home() / ".cache" / "envgen")) / "k8s-tools" / "helm"
    return str(cached) if cached.exists() else shutil.which("helm")


HELM = _find_helm()
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not installed: run scripts/install_k8s_tools.sh")


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, "HELM_CACHE_HOME": str(home), "HELM_CONFIG_HOME": str(home), "HELM_DATA_HOME": str(home)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        assert HELM is not None
        return subprocess.run([HELM, *args], capture_output=True, text=True, env=env, timeout=60)

    return run


@pytest.fixture(scope="module")
def render(helm: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., list[Obj]]:
    cache: dict[tuple[str, ...], list[Obj]] = {}

    def run(*sets: str) -> list[Obj]:
        if sets not in cache:
            args = [arg for s in sets for arg in ("--set", s)]
            proc = helm("template", RELEASE, str(CHART), "--namespace", RELEASE_NS, *args)
            assert proc.returncode == 0, proc.stderr
            cache[sets] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
        return cache[sets]

    return run


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str) -> Obj:
    (obj,) = by_kind(objs, kind)
    return obj


def rules_of(role: Obj) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


def dashboard_series(dashboard: Obj) -> set[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return {m for e in exprs for m in re.findall(r"\benvgen_[a-z0-9_]+\b", e)}


def family(series: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix) and series.removesuffix(suffix) in OPERATOR_METRICS:
            return series.removesuffix(suffix)
    return series


def chart_crds() -> list[Obj]:
    return [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.y*ml"))]


# ---- lint and schema ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets",
    [(), ("watchNamespaces={team-a,team-b}", "metrics.serviceMonitor.enabled=true", "grafana.dashboard.enabled=true")],
    ids=["defaults", "everything-on"],
)
def test_lint_strict(helm: Callable[..., subprocess.CompletedProcess[str]], sets: tuple[str, ...]) -> None:
    proc = helm("lint", "--strict", str(CHART), *[arg for s in sets for arg in ("--set", s)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "bad",
    [
        "replicaCount=2",  # unknown key: Kopf runs as one replica, there is nothing to scale
        "metrics.port=0",
        "watchNamespaces={Team_A}",
        "image.pullPolicy=Sometimes",
        "llm.baseURL=llm:8000",
        "metrics.serviceMonitor.interval=soon",
    ],
)
def test_values_schema_rejects(helm: Callable[..., subprocess.CompletedProcess[str]], bad: str) -> None:
    proc = helm("template", RELEASE, str(CHART), "--set", bad)
    assert proc.returncode != 0
    assert "schema" in proc.stderr.lower() or "values don't meet" in proc.stderr.lower(), proc.stderr


# ---- rendered objects -----------------------------------------------------------------------------------------


def test_defaults_watch_all_namespaces_with_cluster_rbac(render: Callable[..., list[Obj]]) -> None:
    objs = render()
    assert {o["kind"] for o in objs} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"}
    assert rules_of(one(objs, "ClusterRole")) == NAMESPACED_RULES | CLUSTER_ONLY_RULES
    binding = one(objs, "ClusterRoleBinding")
    sa = one(objs, "ServiceAccount")["metadata"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one(objs, "ClusterRole")["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": RELEASE_NS}]
    assert "--namespace" not in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]


def test_watch_namespaces_get_a_role_each_and_no_cluster_rbac(render: Callable[..., list[Obj]]) -> None:
    objs = render("watchNamespaces={team-a,team-b}")
    assert not by_kind(objs, "ClusterRole") and not by_kind(objs, "ClusterRoleBinding")
    roles, bindings = by_kind(objs, "Role"), by_kind(objs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for role in roles:
        assert rules_of(role) == NAMESPACED_RULES
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == RELEASE_NS
    args = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:5] == ["operator", "--namespace", "team-a", "--namespace", "team-b"]


def test_no_wildcards_in_rbac(render: Callable[..., list[Obj]]) -> None:
    for objs in (render(), render("watchNamespaces={team-a}")):
        for role in by_kind(objs, "ClusterRole") + by_kind(objs, "Role"):
            for rule in role["rules"]:
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_rbac_names_the_resources_the_crds_define(render: Callable[..., list[Obj]]) -> None:
    crds = chart_crds()
    assert crds, "no CRDs in crds/"
    granted = rules_of(one(render(), "ClusterRole"))
    for crd in crds:
        spec = crd["spec"]
        assert (spec["group"], spec["names"]["plural"]) in granted
        if any("status" in v.get("subresources", {}) for v in spec["versions"]):
            assert (spec["group"], spec["names"]["plural"] + "/status") in granted


def test_deployment(render: Callable[..., list[Obj]]) -> None:
    objs = render("trainer.image=registry.example/envgen-trainer:1.2", "llm.baseURL=http://llm.llm.svc:8000/v1")
    deploy = one(objs, "Deployment")
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(objs, "ServiceAccount")["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "envgen-operator:0.1.0"
    assert container["command"] == ["envgen"]
    assert container["args"] == ["operator", "--metrics-port", "8080", "--liveness-port", "8081"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "ENVGEN_TRAINER_IMAGE": "registry.example/envgen-trainer:1.2",
        "ENVGEN_TRAINER_POD_SECURITY": '{"fsGroup":10001}',
        "ENVGEN_DEFAULT_LLM_BASE_URL": "http://llm.llm.svc:8000/v1",
    }
    assert "runAsUser" not in pod["securityContext"]  # OpenShift's restricted-v2 assigns one from its range
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "liveness": 8081}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "liveness"}
    assert "readinessProbe" not in container
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"requests", "limits"} <= container["resources"].keys()
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ((), PodSecuritySpec(fs_group=10001)),
        (("trainer.podSecurity=null",), PodSecuritySpec()),  # OpenShift: the cluster assigns UID and fsGroup
        (("trainer.podSecurity.runAsUser=2000", "trainer.podSecurity.fsGroup=null"), PodSecuritySpec(run_as_user=2000)),
    ],
)
def test_trainer_pod_security_reaches_the_operator(
    render: Callable[..., list[Obj]], monkeypatch: pytest.MonkeyPatch, sets: tuple[str, ...], expected: PodSecuritySpec
) -> None:
    (container,) = one(render(*sets), "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    monkeypatch.setenv(POD_SECURITY_ENV, env[POD_SECURITY_ENV])
    assert default_pod_security() == expected


def test_metrics_service_selects_the_pod(render: Callable[..., list[Obj]]) -> None:
    objs = render()
    service, deploy = one(objs, "Service"), one(objs, "Deployment")
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]


def test_service_monitor_only_when_enabled(render: Callable[..., list[Obj]]) -> None:
    assert not by_kind(render(), "ServiceMonitor")
    objs = render(
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.interval=15s",
        "metrics.serviceMonitor.additionalLabels.release=kube-prometheus-stack",
    )
    monitor, service = one(objs, "ServiceMonitor"), one(objs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NS]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "metrics",
        "path": "/metrics",
        "interval": "15s",
        "scrapeTimeout": "10s",
        "honorLabels": True,
    }


def test_dashboard_configmap_only_when_enabled(render: Callable[..., list[Obj]]) -> None:
    assert not by_kind(render(), "ConfigMap")
    cm = one(render("grafana.dashboard.enabled=true", "grafana.dashboard.namespace=monitoring"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "monitoring"
    assert json.loads(cm["data"]["envgen-operator.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    "sets",
    [(), ("watchNamespaces={team-a}", "grafana.dashboard.enabled=true", "metrics.serviceMonitor.enabled=true")],
)
def test_rendered_objects_validate(render: Callable[..., list[Obj]], sets: tuple[str, ...]) -> None:
    """Built-in objects and the CRDs against Kubernetes 1.33's strict schemas (the ServiceMonitor has none)."""
    kv = pytest.importorskip("kubernetes_validate")
    objs = [o for o in render(*sets) if not o["apiVersion"].startswith("monitoring.coreos.com/")]
    for obj in objs + chart_crds():
        kv.validate(obj, "1.33", strict=True)


# ---- CRDs -----------------------------------------------------------------------------------------------------


def test_chart_crds_are_the_repository_crds() -> None:
    """charts/envgen-operator/crds links to the top-level crds/: one source, nothing to sync."""
    link = CHART / "crds"
    assert link.is_symlink() and link.resolve() == (ROOT / "crds").resolve()
    crds = chart_crds()
    # Helm applies every file under crds/ as is, so only CRDs may live there.
    assert all(p.suffix in (".yaml", ".yml") for p in link.iterdir())
    assert {c["kind"] for c in crds} == {"CustomResourceDefinition"}
    assert {c["metadata"]["name"] for c in crds} == {
        f"envgenruns.{GROUP}",
        f"envgencycles.{GROUP}",
        f"envgenexperiments.{GROUP}",
    }


# ---- Grafana dashboard ----------------------------------------------------------------------------------------


def test_dashboard_uses_exactly_the_operator_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert {family(s) for s in dashboard_series(dashboard)} == OPERATOR_METRICS
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "namespace", "run"}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def _exposed_series(module: Any) -> set[str]:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    registries = [v for v in vars(module).values() if isinstance(v, CollectorRegistry)] or [REGISTRY]
    series: set[str] = set()
    for registry in registries:
        for line in generate_latest(registry).decode().splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                series.add(name)
                if kind == "histogram":
                    series.update(name + s for s in HISTOGRAM_SUFFIXES)
    return series


def test_dashboard_metrics_are_registered_by_the_operator() -> None:
    importlib.import_module("envgen.experiment.cluster")  # registers the experiment gauges
    module = importlib.import_module("envgen.k8s.metrics")
    missing = dashboard_series(json.loads(DASHBOARD.read_text())) - _exposed_series(module)
    assert not missing, f"the dashboard queries series the operator does not export: {sorted(missing)}"


# ---- Alert rules (PrometheusRule), checked and unit-tested by promtool ------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed: scripts/setup.sh installs Debian's prometheus package"
)
ALERTS = {
    "EnvGenRunFailed",
    "EnvGenLLMUnavailable",
    "EnvGenTrainingJobsFailing",
    "EnvGenPodsNotCreated",
    "EnvGenPodsUnschedulable",
    "EnvGenOperatorDown",
}


def test_alert_rules_only_when_enabled(render: Callable[..., list[Obj]]) -> None:
    assert not by_kind(render(), "PrometheusRule")
    objs = render("alerts.enabled=true", "alerts.additionalLabels.release=kube-prometheus-stack")
    rule = one(objs, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]} == ALERTS


def _rule_file(render: Callable[..., list[Obj]], tmp_path: Path, *sets: str) -> tuple[Path, str]:
    """The chart's alert rules as a Prometheus rule file, and the operator's scrape job they watch."""
    objs = render("alerts.enabled=true", *sets)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": one(objs, "PrometheusRule")["spec"]["groups"]}))
    return path, one(objs, "Service")["metadata"]["name"]


def _promtool(*args: str, cwd: Path) -> str:
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@needs_promtool
def test_promtool_checks_the_alert_rules(render: Callable[..., list[Obj]], tmp_path: Path) -> None:
    rules, _ = _rule_file(render, tmp_path)
    assert f"SUCCESS: {len(ALERTS)} rules found" in _promtool("check", "rules", str(rules), cwd=tmp_path)


@needs_promtool
def test_promtool_unit_tests_fire_each_alert_when_it_should(render: Callable[..., list[Obj]], tmp_path: Path) -> None:
    rules, job = _rule_file(render, tmp_path, "alerts.llmUnavailableFor=20m")
    described = {
        r["alert"]: r["annotations"]["description"] for r in yaml.safe_load(rules.read_text())["groups"][0]["rules"]
    }
    run = {"namespace": "team-a", "name": "r1"}

    def _alert(name: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
        """An alert as promtool expects it firing (the description is the rule's own)."""
        annotations = {"summary": summary, "description": described[name]}
        return {"exp_labels": {"severity": "warning", **labels}, "exp_annotations": annotations}

    def cond(ctype: str, status: str) -> str:
        return f'envgen_run_condition{{namespace="team-a",name="r1",condition="{ctype}",status="{status}"}}'

    failed = _alert("EnvGenRunFailed", {**run, "condition": "Failed", "status": "True"}, "EnvGenRun team-a/r1 failed")
    llm = _alert(
        "EnvGenLLMUnavailable",
        {**run, "condition": "LLMAvailable", "status": "False"},
        "The LLM of EnvGenRun team-a/r1 has been unavailable for 20m",
    )
    refused = _alert(
        "EnvGenPodsNotCreated",
        {**run, "condition": "PodsCreated", "status": "False"},
        "EnvGenRun team-a/r1: the API refuses its PodsCreated",
    )
    no_node = _alert(
        "EnvGenPodsUnschedulable",
        {**run, "condition": "PodsScheduled", "status": "False"},
        "EnvGenRun team-a/r1: its training Pods find no node",
    )
    failing = _alert(
        "EnvGenTrainingJobsFailing",
        {"namespace": "team-a"},
        "Training Jobs keep failing in namespace team-a: at least 3 within 1h",
    )
    down = _alert("EnvGenOperatorDown", {}, f"The EnvGen operator ({job}) has not been scraped for 5m")
    down["exp_labels"]["severity"] = "critical"
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": cond("Failed", "True"), "values": "0 0 1 1"},
                    {"series": cond("LLMAvailable", "False"), "values": "1x40"},
                    {"series": cond("PodsCreated", "False"), "values": "1x5 0x20"},  # refused 5 minutes, then created
                    {"series": cond("PodsScheduled", "False"), "values": "1x40"},  # waiting for a node
                    {"series": f'up{{job="{job}"}}', "values": "1x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "EnvGenRunFailed", "exp_alerts": []},
                    {"eval_time": "3m", "alertname": "EnvGenRunFailed", "exp_alerts": [failed]},
                    {"eval_time": "15m", "alertname": "EnvGenLLMUnavailable", "exp_alerts": []},
                    {"eval_time": "25m", "alertname": "EnvGenLLMUnavailable", "exp_alerts": [llm]},
                    {"eval_time": "20m", "alertname": "EnvGenPodsNotCreated", "exp_alerts": []},
                    {"eval_time": "25m", "alertname": "EnvGenPodsUnschedulable", "exp_alerts": []},
                    {"eval_time": "35m", "alertname": "EnvGenPodsUnschedulable", "exp_alerts": [no_node]},
                    {"eval_time": "30m", "alertname": "EnvGenOperatorDown", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": cond("PodsCreated", "False"), "values": "1x20"},
                    {
                        "series": 'envgen_training_jobs_failed_total{namespace="team-a",reason="BackoffLimitExceeded"}',
                        "values": "0x10 1 2 3x10",
                    },
                    {"series": f'up{{job="{job}"}}', "values": "1 1 0x20"},  # the operator stops answering
                ],
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": "EnvGenPodsNotCreated", "exp_alerts": []},
                    {"eval_time": "12m", "alertname": "EnvGenPodsNotCreated", "exp_alerts": [refused]},
                    {"eval_time": "11m", "alertname": "EnvGenTrainingJobsFailing", "exp_alerts": []},
                    {"eval_time": "15m", "alertname": "EnvGenTrainingJobsFailing", "exp_alerts": [failing]},
                    {"eval_time": "5m", "alertname": "EnvGenOperatorDown", "exp_alerts": []},
                    {"eval_time": "9m", "alertname": "EnvGenOperatorDown", "exp_alerts": [down]},
                ],
            },
            {  # no operator target at all (never deployed, or its ServiceMonitor selects nothing)
                "interval": "1m",
                "input_series": [{"series": 'up{job="something-else"}', "values": "1x10"}],
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": "EnvGenOperatorDown", "exp_alerts": []},
                    {"eval_time": "7m", "alertname": "EnvGenOperatorDown", "exp_alerts": [down]},
                ],
            },
        ],
    }
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
