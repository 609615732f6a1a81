"""The ``envgen`` command: run locally, validate a run.yaml, serve the embedded LLM, run the operator."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .experiment.model import EnvGenExperiment, is_experiment, parse_experiment
from .spec import EnvGenRun, SpecError, load_document, load_run, parse_run

EXIT_INVALID = 2


def _load(path: str) -> EnvGenRun | EnvGenExperiment:
    """A run.yaml or an experiment.yaml, by its kind."""
    doc = load_document(path)
    return parse_experiment(doc, path) if is_experiment(doc) else parse_run(doc, path)


def _run(args: argparse.Namespace) -> int:
    doc = _load(args.file)
    from .experiment.local import run_experiment
    from .llm.embedded import EmbeddedLLMError
    from .local.runner import run_local

    root = Path(args.run_dir) if args.run_dir else Path("runs") / doc.name
    if args.arms is not None and not isinstance(doc, EnvGenExperiment):
        raise SpecError(f"--arms: {args.file} is an EnvGenRun, not an EnvGenExperiment")
    try:
        if isinstance(doc, EnvGenExperiment):
            return run_experiment(doc, root, quiet=args.quiet, retry=args.retry, arms=args.arms)
        return run_local(doc, root, quiet=args.quiet, retry=args.retry)
    except EmbeddedLLMError as exc:
        print(f"error: the embedded LLM could not start: {exc}", file=sys.stderr)
        return 1


def _validate(args: argparse.Namespace) -> int:
    doc = _load(args.file)
    if isinstance(doc, EnvGenExperiment):
        spec = doc.spec
        arms = ", ".join(a.name for a in spec.arms)
        print(
            f"{args.file}: valid EnvGenExperiment {doc.name!r} ({len(spec.arms)} arms: {arms}; {spec.seeds} seeds; "
            f"baseline {spec.baseline})"
        )
    else:
        print(f"{args.file}: valid EnvGenRun {doc.name!r} ({doc.spec.game}, designer {doc.spec.designer.type})")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import UnknownFieldError, explain

    try:
        print(explain(args.field))
    except UnknownFieldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return 0


def _report(args: argparse.Namespace) -> int:
    from .experiment import local as experiment

    if experiment.is_experiment_dir(Path(args.run_dir)):
        d = experiment.ExperimentDir(Path(args.run_dir))
        exp = parse_experiment(load_document(d.spec), str(d.spec))
        status = experiment.write_report(exp, d)
        print(experiment.summary_table(status, exp.spec.baseline))
        print(f"report: {d.report / 'report.md'}")
        return 0
    from .local.backend import LocalBackend
    from .local.report import summary_table, write_report
    from .local.rundir import RunDir, read_json

    rundir = RunDir(Path(args.run_dir))
    run = load_run(rundir.spec)
    observed = LocalBackend(rundir).observe()
    files = write_report(run, observed, rundir.report, read_json(rundir.finished))
    print(summary_table(run, observed))
    print("report: " + ", ".join(str(f) for f in files))
    return 0


def _llm_serve(args: argparse.Namespace) -> int:
    from .llm.embedded import serve_forever

    serve_forever(args.port)
    return 0


def _operator(args: argparse.Namespace) -> int:
    from .k8s.operator import run as run_operator

    run_operator(args.namespace or [], args.metrics_port, args.liveness_port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envgen", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "run", help="run (or resume) an EnvGenRun or an EnvGenExperiment locally: training as local processes"
    )
    p.add_argument("file", help="run.yaml or experiment.yaml")
    p.add_argument("--run-dir", help="run or experiment directory (default: runs/<metadata.name>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--retry",
        action="store_true",
        help="continue a Failed run from its last good state: finished cycles are kept, earlier failures and "
        "LLM outage time stop counting",
    )
    p.add_argument(
        "--arms",
        nargs="+",
        metavar="ARM",
        help="an experiment: run only these arms now (the others wait for a later run; the report covers every "
        "arm that has started)",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser("validate", help="check a run.yaml or an experiment.yaml and exit")
    p.add_argument("file")
    p.set_defaults(func=_validate)

    p = sub.add_parser("explain", help="describe a run.yaml field: type, default, allowed values")
    p.add_argument("field", help="a dotted field path, e.g. spec.agent.learningRate")
    p.set_defaults(func=_explain)

    p = sub.add_parser("report", help="rewrite the report of a run or experiment directory")
    p.add_argument("run_dir")
    p.set_defaults(func=_report)

    llm = sub.add_parser("llm", help="the embedded local LLM").add_subparsers(dest="llm_command", required=True)
    p = llm.add_parser("serve", help="serve SmolLM2-135M through llama.cpp's OpenAI-compatible server")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.set_defaults(func=_llm_serve)

    p = sub.add_parser("operator", help="run the Kubernetes operator")
    p.add_argument("--namespace", action="append", help="a namespace to watch; repeat for several (default: all)")
    p.add_argument("--metrics-port", type=int, default=8080)
    p.add_argument("--liveness-port", type=int, default=None)
    p.set_defaults(func=_operator)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
