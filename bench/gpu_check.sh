#!/usr/bin/env bash
# The trainer's GPU figures for bench/README.md, on a machine with a CUDA GPU (never run in CI): a CUDA PPO
# smoke (one short training on the GPU), then the end-to-end throughput with 16 env workers and the per-env-step
# split (env, pipeline, stepping, inference, update) for the IMPALA ResNet and the Nature CNN (and IMPALA with
# bf16, two env groups and overlapped collection), then two chunks of
# the science benchmark's paper profile, the second resuming the first. Under 9 minutes on one GPU + 16 cores.
# Usage: bash bench/gpu_check.sh  (PYTHON=... to use another interpreter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}

echo "== CUDA PPO smoke"
timeout 120 "$PY" - <<'PY'
import torch

from envgen.spec import AgentSpec
from envgen_trainer.ppo import PPO, PPOArgs
from envgen_trainer.vecenv import EnvSpec, VecEnv

assert torch.cuda.is_available(), "no CUDA device"
agent = PPO(PPOArgs.from_spec(AgentSpec(num_envs=8, rollout_steps=32, epochs=1, minibatches=2, device="cuda")), 17)
before = [p.detach().clone() for p in agent.net.parameters()]
with VecEnv([EnvSpec("crafter", i) for i in range(8)], 4) as vec:
    done = agent.train(vec, 512, lambda ep: None, lambda s: None)
changed = any(not torch.equal(a, b) for a, b in zip(before, agent.net.parameters()))
assert done == 512 and changed and next(agent.net.parameters()).is_cuda
print(f"ok: {done} steps on {torch.cuda.get_device_name()}")
PY

# The same figures with the agent's GPU options: bf16 forward passes, two alternating env groups, and the next
# rollout collected during the update (spec.agent precision, envGroups, overlap).
for setting in "impala" "nature" "impala --precision bfloat16 --env-groups 2 --overlap"; do
    echo "== $setting: 64 envs, 16 workers, 256-step rollouts, 3 epochs x 8 minibatches"
    # shellcheck disable=SC2086  # the setting is a network and its flags
    timeout 120 "$PY" bench/pipeline_speed.py --device cuda --network $setting --envs 64 --workers 16 \
        --rollout 256 --minibatches 8 --steps 32768 --rounds 1 || echo "($setting: cut at 120 s)"
done

# The paper's profile in chunks: a 1-minute chunk, then a second run that must resume it (not start over).
echo "== science --profile paper, arm none, 1 seed: a 1-minute chunk, then a resume"
science=$(mktemp -d)  # a check, not a result: runs and results go to a scratch folder
for chunk in 1 2; do
    ENVGEN_SCIENCE_DIR="$science" timeout 240 "$PY" -m bench.science run --profile paper --arms none --seeds 1 \
        --max-minutes 1 || true
done
grep -h '"steps"' "$science"/runs/paper/sci/arms/none/tasks/*/progress.json 2>/dev/null | tail -1 \
    || echo "no progress recorded"
