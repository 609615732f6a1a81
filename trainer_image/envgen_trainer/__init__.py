"""EnvGen trainer: configurable Crafter and Heist envs, a pipe vector env, PPO, evaluation and the CLI."""

import sys

# crafter imports gym, which prints a deprecation notice from gym_notices on import; the notice is noise here.
sys.modules.setdefault("gym_notices", None)  # type: ignore[arg-type]
