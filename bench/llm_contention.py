"""The embedded LLM under CPU contention: tokens/s alone vs beside one training process, old vs new settings.

Old settings: llama.cpp's defaults as the project used them before (``-t`` = every usable core, ``--poll 50``:
threads busy-wait between operations). New settings: ``--poll 0`` and ``-t`` = free cores
(:func:`envgen.llm.embedded.free_cores`). The training process is the project's PPO trainer on Crafter (a
``VecEnv`` with one worker per core and torch on every core, as ``envgen-train`` runs it), started by this
script with ``--trainer`` and left running through the "beside" phases.

Every phase sends ``--requests`` identical Crafter design requests (the production prompt and schema, streamed,
temperature 0, ``--max-tokens``) and reports decode tokens/s (from the first token on) and end-to-end tokens/s
(completion tokens over the whole request). Phases run in one go, alone first, then beside the trainer, then
alone again to bracket drift on a machine that others share; the trainer's env-steps/s is reported per phase.

    .venv/bin/python bench/llm_contention.py --requests 3 --out /tmp/llm_contention.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from envgen.contracts import DesignRequest
from envgen.cores import usable_cores
from envgen.designers.prompts import build_chat
from envgen.designers.schema import answer_schema
from envgen.llm import CallLog, LLMClient, LLMSettings
from envgen.llm.embedded import MODEL_ALIAS, EmbeddedLLM, free_cores
from envgen.llm.progress import StreamProgress
from envgen.processes import die_with_parent

SETTINGS: dict[str, dict[str, Any]] = {
    "old": {"threads": usable_cores(), "poll": 50},
    "new": {},  # the defaults: --poll 0, threads from free cores at start
}


def train_forever(steps_file: Path) -> None:
    """The training process: PPO on Crafter until killed, writing its cumulative env steps after each iteration."""
    from envgen.cores import env_workers
    from envgen.spec import AgentSpec
    from envgen_trainer.ppo import PPO, PPOArgs
    from envgen_trainer.vecenv import EnvSpec, VecEnv

    spec = AgentSpec(num_envs=8, rollout_steps=128, epochs=3, minibatches=4, device="cpu")
    agent = PPO(PPOArgs.from_spec(spec), 17)
    done = 0
    with VecEnv([EnvSpec("crafter", i) for i in range(spec.num_envs)], env_workers(spec.num_envs)) as vec:
        while True:
            done += agent.train(vec, spec.num_envs * spec.rollout_steps, lambda ep: None, lambda s: None)
            tmp = steps_file.with_suffix(".tmp")
            tmp.write_text(f"{done} {time.monotonic()}\n")
            tmp.replace(steps_file)


def trainer_steps(steps_file: Path) -> tuple[int, float] | None:
    try:
        steps, at = steps_file.read_text().split()
        return int(steps), float(at)
    except (OSError, ValueError):
        return None


def measure(llm: EmbeddedLLM, requests: int, max_tokens: int) -> list[dict[str, float]]:
    """Send the same design request ``requests`` times; decode and end-to-end tokens/s of each."""
    settings = LLMSettings(
        base_url=llm.base_url, model=MODEL_ALIAS, timeout_seconds=600, max_retries=0, max_tokens=max_tokens
    )
    request = DesignRequest(game="crafter", cycle=1, num_envs=2)
    chat, _ = build_chat(request)
    schema = answer_schema("crafter", 2)
    rows = []
    final: list[StreamProgress] = []
    client = LLMClient(settings, on_progress=lambda p: final.append(p) if p.done else None)
    for _ in range(requests):
        answer = client.chat(chat, schema, "envgen_crafter_design", CallLog())
        done = final[-1]
        rows.append(
            {
                "completionTokens": answer.completion_tokens,
                "seconds": answer.latency_seconds,
                "decodeTokensPerSecond": round(done.tokens_per_second, 2),
                "endToEndTokensPerSecond": round(answer.completion_tokens / answer.latency_seconds, 2),
            }
        )
        print(f"    {rows[-1]}", flush=True)
    client.close()
    return rows


def phase(name: str, setting: str, requests: int, max_tokens: int, steps_file: Path | None) -> dict[str, Any]:
    load = os.getloadavg()[0]
    before = trainer_steps(steps_file) if steps_file else None
    with EmbeddedLLM(**SETTINGS[setting]) as llm:
        print(f"{name} / {setting}: -t {llm.threads} --poll {llm.poll} (load {load:.2f})", flush=True)
        rows = measure(llm, requests, max_tokens)
    after = trainer_steps(steps_file) if steps_file else None
    result: dict[str, Any] = {
        "phase": name,
        "settings": setting,
        "threads": llm.threads,
        "poll": llm.poll,
        "loadAverage": round(load, 2),
        "decodeTokensPerSecond": round(statistics.median(r["decodeTokensPerSecond"] for r in rows), 2),
        "endToEndTokensPerSecond": round(statistics.median(r["endToEndTokensPerSecond"] for r in rows), 2),
        "requests": rows,
    }
    if before and after and after[1] > before[1]:
        result["trainerStepsPerSecond"] = round((after[0] - before[0]) / (after[1] - before[1]), 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3, help="design requests per phase")
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds the trainer runs before measuring")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--trainer", type=Path, default=None, help=argparse.SUPPRESS)  # the training process
    args = parser.parse_args()
    if args.trainer is not None:
        train_forever(args.trainer)
        return 0
    print(f"usable cores {usable_cores()}, machine cores {os.cpu_count()}, free now {free_cores()}", flush=True)
    results = [phase("alone", s, args.requests, args.max_tokens, None) for s in SETTINGS]
    steps_file = Path(f"/tmp/llm-contention-trainer-{os.getpid()}.steps")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # so that `finally` stops it
    trainer = subprocess.Popen(
        [sys.executable, __file__, "--trainer", str(steps_file)], start_new_session=True, preexec_fn=die_with_parent
    )
    try:
        time.sleep(args.warmup)
        if trainer.poll() is not None:
            raise SystemExit(f"the training process exited with code {trainer.returncode}")
        results += [phase("beside trainer", s, args.requests, args.max_tokens, steps_file) for s in SETTINGS]
    finally:
        os.killpg(trainer.pid, signal.SIGKILL)  # the trainer and its env workers
        trainer.wait()
        steps_file.unlink(missing_ok=True)
    results += [phase("alone again", s, args.requests, args.max_tokens, None) for s in SETTINGS]
    print("\nphase           settings  -t  load  decode tok/s  end-to-end tok/s  trainer steps/s")
    for r in results:
        print(
            f"{r['phase']:<15} {r['settings']:<9} {r['threads']:>2}  {r['loadAverage']:>4}  "
            f"{r['decodeTokensPerSecond']:>12}  {r['endToEndTokensPerSecond']:>16}  "
            f"{r.get('trainerStepsPerSecond', '-'):>15}"
        )
    for setting in SETTINGS:
        alone = [r["decodeTokensPerSecond"] for r in results if r["settings"] == setting and "alone" in r["phase"]]
        beside = [r["decodeTokensPerSecond"] for r in results if r["settings"] == setting and "beside" in r["phase"]]
        print(f"{setting}: beside the trainer {statistics.mean(alone) / beside[0]:.1f}x slower than alone (decode)")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
