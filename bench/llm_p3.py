"""Benchmark P3: the embedded model as EnvGen's Crafter designer.

Sends ``--requests`` design requests through the production path (LLMDesigner -> LLMClient -> llama-server
with SmolLM2-135M): alternately the cycle-1 prompt and the first feedback prompt with a random success table,
at temperature 0.7 so that answers differ. Reports the first-try schema-valid rate (goal >= 95 %), the rate
valid after the one repair turn, latency (mean/p50/p95 per request, repairs included) and the critic's
findings on the accepted sets. The critic's repair turn is off here so each request is one design call.

    .venv/bin/python bench/llm_p3.py --requests 50 --out /tmp/llm_p3.json | tee /tmp/llm_p3.log
    .venv/bin/python bench/llm_p3.py --summarize /tmp/llm_p3.log     # a partial run's rows so far
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import sys
import time
from collections import Counter
from typing import Any

from envgen.achievements import ACHIEVEMENTS
from envgen.contracts import CycleDesign, CycleFeedback, CycleHistory, DesignRequest, SkillStat
from envgen.designers import DesignError, LLMDesigner
from envgen.games.crafter import PRACTICE as CRAFTER_PRACTICE
from envgen.llm import LLMClient, LLMSettings
from envgen.llm.embedded import MODEL_ALIAS, EmbeddedLLM


def feedback_request(rng: random.Random, n: int) -> DesignRequest:
    """Cycle 2 with a random (plausible) success table and N catalogue envs as the previous design."""
    success = {
        a: SkillStat(mean=rng.uniform(0, 100) / (1 + i % 5), std=rng.uniform(0, 10)) for i, a in enumerate(ACHIEVEMENTS)
    }
    envs = [c.env for c in rng.sample(list(CRAFTER_PRACTICE.values()), n)]
    previous = CycleHistory(
        design=CycleDesign(cycle=1, designer="llm", envs=envs),
        feedback=CycleFeedback(cycle=1, success=success),
    )
    return DesignRequest(game="crafter", cycle=2, num_envs=n, history=[previous])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--envs", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--out", default=None, help="write per-request results as JSON here")
    parser.add_argument("--summarize", default=None, help="only summarise the rows in this --out file or log")
    args = parser.parse_args()
    if args.summarize:
        print(summary(read_rows(args.summarize), args))
        return

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on kill, too
    rng = random.Random(1234)
    rows: list[dict[str, Any]] = []
    with EmbeddedLLM() as llm:
        settings = LLMSettings(
            base_url=llm.base_url,
            model=MODEL_ALIAS,
            temperature=args.temperature,
            timeout_seconds=600,
            max_retries=0,
            max_tokens=args.max_tokens,
        )
        designer = LLMDesigner(LLMClient(settings), critic=False)
        for i in range(args.requests):
            request = (
                DesignRequest(game="crafter", cycle=1, num_envs=args.envs)
                if i % 2 == 0
                else feedback_request(rng, args.envs)
            )
            started = time.monotonic()
            error: str | None = None
            try:
                design: CycleDesign | None = designer.design(request)
            except DesignError as exc:
                design, error = exc.design, str(exc)
            assert design is not None
            row = {
                "i": i,
                "prompt": "initial" if i % 2 == 0 else "first-feedback",
                "first_try_valid": error is None and not any("answer invalid" in n for n in design.notes),
                "valid_after_repair": error is None,
                "seconds": round(time.monotonic() - started, 2),
                "first_call_seconds": design.attempts[0]["latencySeconds"] if design.attempts else None,
                "calls": design.usage.calls,
                "prompt_tokens": design.usage.prompt_tokens,
                "completion_tokens": design.usage.completion_tokens,
                "findings": sorted({f.code for f in design.findings}),
                "distinct_envs": len({e.config.model_dump_json() for e in design.envs}),
                "problems": [n for n in design.notes if "invalid" in n],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)
    print(summary(rows, args))


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows from an --out file (a JSON list) or from this script's output (one JSON object per line)."""
    with open(path) as fh:
        text = fh.read()
    if text.lstrip().startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    n = len(rows)
    first = sum(r["first_try_valid"] for r in rows)
    after = sum(r["valid_after_repair"] for r in rows)
    secs = [r["seconds"] for r in rows]
    completion = [r["completion_tokens"] / max(r["calls"], 1) for r in rows]
    valid = [r for r in rows if r["valid_after_repair"]]
    findings = Counter(code for r in valid for code in r["findings"])
    distinct = statistics.fmean(r["distinct_envs"] for r in valid) if valid else 0.0
    lines = [
        f"requests: {n} (N = {args.envs} envs each, temperature {args.temperature}, max_tokens {args.max_tokens})",
        f"first-try schema-valid: {first}/{n} = {100 * first / n:.0f} %",
        f"valid after one repair: {after}/{n} = {100 * after / n:.0f} %",
        f"latency per request (s): mean {statistics.fmean(secs):.1f}, p50 {percentile(secs, 0.5):.1f}, "
        f"p95 {percentile(secs, 0.95):.1f}, max {max(secs):.1f}",
        f"completion tokens per call: mean {statistics.fmean(completion):.0f}",
        f"distinct envs per accepted set: mean {distinct:.1f} of {args.envs}",
        "critic findings on accepted sets (sets affected): "
        + ", ".join(f"{code} {count}/{len(valid)}" for code, count in findings.most_common()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
