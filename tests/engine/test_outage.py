"""LLM outages in the engine: wait with backoff, retry when due, fail past the tolerance; reopening failed runs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envgen.engine import (
    BACKOFF_CAP_SECONDS,
    LLM_UNAVAILABLE,
    DesignEnvs,
    Finish,
    LLMOutage,
    Observed,
    ObservedTask,
    Reopen,
    WaitForLLM,
    decide,
    next_retry_at,
    outage_after,
    retry_delay,
    summarize,
    unusable,
)

from .test_engine import RUN, design, make_spec, metrics

T0 = 1_000_000.0


def down(attempts: int = 1, since: float = T0, last: float = T0, retry_after: float | None = None) -> LLMOutage:
    return LLMOutage(
        since=since, last_attempt=last, attempts=attempts, reason="connection refused", retry_after=retry_after
    )


def test_backoff_grows_with_jitter_is_capped_and_deterministic() -> None:
    delays = [retry_delay(RUN, n) for n in range(1, 12)]
    for n, d in enumerate(delays, start=1):
        base = min(BACKOFF_CAP_SECONDS, 2.0 * 2 ** (n - 1))
        assert 0.5 * base <= d < base
    assert delays[4] > delays[0] * 4  # exponential, not constant
    assert max(delays) < BACKOFF_CAP_SECONDS
    assert delays == [retry_delay(RUN, n) for n in range(1, 12)]  # replicas and restarts agree
    assert retry_delay(RUN, 3) != retry_delay("other-run", 3)  # runs spread out


def test_retry_after_is_honoured() -> None:
    assert retry_delay(RUN, 1, retry_after=42.0) == 42.0
    assert retry_delay(RUN, 8, retry_after=1.0) == retry_delay(RUN, 8)  # never shorter than the backoff


def test_waits_until_the_retry_time_then_designs_again() -> None:
    spec = make_spec()
    outage = down(attempts=2)
    retry_at = next_retry_at(RUN, spec, outage)
    assert retry_at == pytest.approx(T0 + retry_delay(RUN, 2))
    early = decide(RUN, spec, Observed(outage=outage, now=retry_at - 0.1))
    assert early == [WaitForLLM(1, retry_at, "connection refused")]
    due = decide(RUN, spec, Observed(outage=outage, now=retry_at))
    assert len(due) == 1 and isinstance(due[0], DesignEnvs) and due[0].cycle == 1


def test_outage_is_not_a_failed_task() -> None:
    spec = make_spec(maxFailedTasks=1)
    outage = down(attempts=30, last=T0 + 600)
    actions = decide(RUN, spec, Observed(outage=outage, now=T0 + 10_000))
    assert [type(a) for a in actions] == [DesignEnvs]
    summary = summarize(spec, Observed(outage=outage, now=T0), RUN)
    assert summary.tasks.failed == 0 and summary.design_failures == 0
    assert not summary.llm_available and summary.llm_reason == "connection refused"
    assert summary.llm_retry_at == next_retry_at(RUN, spec, outage)
    assert "LLM unavailable" in summary.message


def test_running_tasks_are_not_disturbed_by_an_outage() -> None:
    spec = make_spec(cycles=2)
    running = ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "running")
    observed = Observed(designs={1: design(1)}, tasks=(running,), outage=down(), now=T0)
    assert decide(RUN, spec, observed) == []


def test_fails_past_the_tolerance_and_the_last_retry_lands_on_it() -> None:
    spec = make_spec(llm={"outageToleranceSeconds": 60})
    outage = down(attempts=9, last=T0 + 50)
    assert next_retry_at(RUN, spec, outage) == T0 + 60  # backoff would overshoot; the last try is at the limit
    assert [type(a) for a in decide(RUN, spec, Observed(outage=outage, now=T0 + 55))] == [WaitForLLM]
    failed = decide(RUN, spec, Observed(outage=replace(outage, last_attempt=T0 + 60), now=T0 + 60))
    assert len(failed) == 1 and isinstance(failed[0], Finish)
    assert failed[0].outcome == "Failed" and failed[0].reason == LLM_UNAVAILABLE
    assert "connection refused" in failed[0].message


def test_zero_tolerance_fails_at_the_first_unavailable_answer() -> None:
    spec = make_spec(llm={"outageToleranceSeconds": 0})
    actions = decide(RUN, spec, Observed(outage=outage_after(None, T0, "HTTP 503", None), now=T0))
    assert isinstance(actions[0], Finish) and actions[0].reason == LLM_UNAVAILABLE


def test_outage_after_keeps_its_start() -> None:
    first = outage_after(None, T0, "timeout", None)
    second = outage_after(first, T0 + 5, "HTTP 429", 30.0)
    assert (second.since, second.last_attempt, second.attempts, second.retry_after) == (T0, T0 + 5, 2, 30.0)


def test_raising_the_tolerance_reopens_a_run_that_failed_unavailable() -> None:
    outage = down(attempts=9, last=T0 + 60)
    observed = Observed(outage=outage, now=T0 + 5000, finished="Failed", finished_reason=LLM_UNAVAILABLE)
    assert decide(RUN, make_spec(llm={"outageToleranceSeconds": 60}), observed) == []
    actions = decide(RUN, make_spec(llm={"outageToleranceSeconds": 3600}), observed)
    assert len(actions) == 1 and isinstance(actions[0], Reopen)


def test_raising_max_failed_tasks_reopens_and_forgiven_failures_stop_counting() -> None:
    bad = ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "failed", reason="OOM")
    observed = Observed(
        designs={1: design(1)}, tasks=(bad,), finished="Failed", finished_reason="MaxFailedTasksReached"
    )
    assert decide(RUN, make_spec(maxFailedTasks=1), observed) == []
    assert [type(a) for a in decide(RUN, make_spec(maxFailedTasks=2), observed)] == [Reopen]
    forgiven = replace(observed, forgiven_failures=1)
    assert [type(a) for a in decide(RUN, make_spec(maxFailedTasks=1), forgiven)] == [Reopen]
    running = decide(RUN, make_spec(maxFailedTasks=1), replace(forgiven, finished=None, finished_reason=None))
    assert [a.task.name for a in running] == ["demo-c1-s0-r2"]  # type: ignore[union-attr]


def test_other_failures_and_successes_stay_ended() -> None:
    deadline = Observed(finished="Failed", finished_reason="DeadlineExceeded", elapsed_seconds=10)
    assert decide(RUN, make_spec(), deadline) == []
    assert decide(RUN, make_spec(), Observed(finished="Succeeded", finished_reason="AllCyclesCompleted")) == []


def test_succeeded_without_metrics_rule() -> None:
    assert unusable(None) is not None and unusable(None)[0] == "MetricsUnavailable"  # type: ignore[index]
    assert unusable(metrics("t", 1.0, error="nan loss")) == ("TrainerError", "nan loss")
    assert unusable(metrics("t", 1.0)) is None
    task = ObservedTask("demo-c1-s0", "cycle", 1, 0, 1, "succeeded")
    assert task.failed and not task.usable
    assert replace(task, metrics=metrics("t", 1.0)).usable
