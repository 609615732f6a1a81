"""The training Job and claim manifests: claims per seed or shared, the Pods' security settings."""

from __future__ import annotations

from typing import Any

import pytest

from envgen.contracts import TrainingTask
from envgen.k8s.jobs import POD_SECURITY_ENV, claim_manifest, claim_name, default_pod_security, job_manifest
from envgen.spec import EnvGenRun, parse_run

OWNER = {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "name": "r", "uid": "u", "controller": True}


def run(**spec: Any) -> EnvGenRun:
    return parse_run(
        {"apiVersion": "envgen.dev/v1alpha1", "kind": "EnvGenRun", "metadata": {"name": "r"}, "spec": spec}
    )


def task(seed: int) -> TrainingTask:
    return TrainingTask(
        run="r",
        name=f"r-c1-s{seed}",
        phase="cycle",
        cycle=1,
        seed=seed,
        game="crafter",
        checkpoint_out=f"checkpoints/s{seed}/c1.pt",
        output_dir=f"tasks/r-c1-s{seed}",
    )


def pod(r: EnvGenRun, seed: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = job_manifest(r, task(seed), 1, OWNER)["spec"]["template"]["spec"]
    return spec


def mounted_claim(r: EnvGenRun, seed: int) -> str:
    (claim,) = [
        v["persistentVolumeClaim"]["claimName"] for v in pod(r, seed)["volumes"] if "persistentVolumeClaim" in v
    ]
    return str(claim)


@pytest.mark.parametrize(
    ("checkpoints", "claims", "mode"),
    [
        ({}, ["r-checkpoints-s0", "r-checkpoints-s1"], "ReadWriteOnce"),
        ({"accessMode": "ReadWriteMany"}, ["r-checkpoints", "r-checkpoints"], "ReadWriteMany"),
        ({"claimName": "mine"}, ["mine", "mine"], None),
    ],
)
def test_parallel_seeds_share_a_claim_only_when_it_is_read_write_many(
    checkpoints: dict[str, Any], claims: list[str], mode: str | None
) -> None:
    r = run(seeds=2, checkpoints=checkpoints)
    assert [mounted_claim(r, s) for s in (0, 1)] == [claim_name(r, s) for s in (0, 1)] == claims
    if mode is not None:
        made = claim_manifest(r, 1, OWNER)
        assert made["metadata"]["name"] == claims[1] and made["spec"]["accessModes"] == [mode]


def test_pods_are_restricted_and_take_the_runs_ids_over_the_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POD_SECURITY_ENV, raising=False)
    plain = pod(run())
    assert plain["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = plain["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    writable = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/home/envgen"} <= writable and {"name": "HOME", "value": "/home/envgen"} in container["env"]

    monkeypatch.setenv(POD_SECURITY_ENV, '{"fsGroup": 10001, "runAsUser": 10001}')
    sc = pod(run(resources={"podSecurity": {"runAsUser": 2000, "runAsGroup": 3000}}))["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (2000, 3000, 10001)
    assert sc["fsGroupChangePolicy"] == "OnRootMismatch"


def test_a_bad_operator_default_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POD_SECURITY_ENV, '{"fsgroup": 1}')
    with pytest.raises(ValueError, match=POD_SECURITY_ENV):
        default_pod_security()
