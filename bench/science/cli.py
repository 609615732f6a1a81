"""``python -m bench.science``: run (or resume) the arms through the profile's experiment, then write the report; or
only write the report.

The command line sits apart from the arms' runner (``run``), so the imports go one way: ``cli`` -> ``report`` ->
``sb3`` -> ``run``.
"""

from __future__ import annotations

import argparse
import signal
import time
from functools import partial

from . import run
from .report import write_report
from .run import (
    ARMS,
    DEFAULT_ARMS,
    PROFILES,
    REFERENCE_ARMS,
    REFERENCES,
    experiment_batch,
    git_commit,
    reference_batch,
    run_batch,
)
from .sb3 import SB3_ARM, require_sb3, run_sb3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.science", description=(run.__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run (or resume) arms x seeds, then write the report")
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    p.add_argument(
        "--arms", nargs="+", choices=sorted(ARMS), help="default: every arm, or none when --reference is given"
    )
    p.add_argument(
        "--reference",
        choices=REFERENCES,
        help="also run stable-baselines3 PPO on stock Crafter (arm sb3-250k), same budget and protocol as ppo-250k",
    )
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds FIRST .. FIRST+SEEDS-1 as another batch of each arm (the experiment with firstSeed FIRST, "
        "pooled feedback within the batch); the report pools every finished batch of an arm",
    )
    p.add_argument("--endpoint", help="OpenAI-compatible base URL for the llm-endpoint arm")
    p.add_argument("--model", help="model name at --endpoint")
    p.add_argument("--max-minutes", type=float, help="stop after this long (resume by running again)")
    p.add_argument("--commit", action="store_true", help="git-commit each arm's raw results as they land")
    p.add_argument("--nice", type=int, default=0, help="niceness of the training processes")
    p.add_argument("--poll", type=float, default=20.0, help="seconds between result syncs")
    p.add_argument("--retries", type=int, default=3, help="resumes of an envgen run that crashed")
    p.add_argument("--retry-wait", type=float, default=60.0, help="seconds before such a resume")
    p = sub.add_parser("report", help="write RESULTS.md, summary.json and the plots from the raw results")
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    p.add_argument("--commit", action="store_true", help="git-commit the report files when they change")
    p.add_argument("--every", type=float, help="rewrite (and commit) every this many minutes, until stopped")
    args = parser.parse_args(argv)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)  # `kill` stops the arm's envgen run too

    if args.command == "run":
        deadline = time.time() + 60 * args.max_minutes if args.max_minutes else None
        arms = args.arms if args.arms is not None else ([] if args.reference else DEFAULT_ARMS)
        seeds = range(args.first_seed, args.first_seed + args.seeds)  # one batch, for the arms and SB3 alike
        designed = [arm for arm in arms if arm not in REFERENCE_ARMS]
        batches = [experiment_batch(args.profile, designed, seeds, args)] if designed else []
        batches += [reference_batch(arm, args.profile, seeds) for arm in arms if arm in REFERENCE_ARMS]

        def finished(name: str) -> None:
            files = write_report(args.profile)
            if args.commit:
                git_commit(files, f"Science benchmark report: {args.profile}, {name} finished")

        jobs = [(b.name, partial(run_batch, b, args.profile, seeds, args, deadline, finished)) for b in batches]
        if args.reference == "sb3":
            require_sb3(args.profile, seeds)  # before hours of other arms, not after
            jobs.append((SB3_ARM, partial(run_sb3, args.profile, seeds, args, deadline)))
        for name, job in jobs:
            done = job()
            files = write_report(args.profile)
            if done and args.commit:
                git_commit(files, f"Science benchmark report: {args.profile}, {name} finished")
            if deadline is not None and time.time() > deadline:
                break
        return 0
    while True:
        files = write_report(args.profile)
        print("\n".join(str(p) for p in files), flush=True)
        if args.commit:
            git_commit(files, f"Science benchmark report: {args.profile}, results so far")
        if not args.every:
            return 0
        time.sleep(60 * args.every)
