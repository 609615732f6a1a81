"""EnvGen: an LLM designs training environments for an RL agent, cycle by cycle.

The package is light on purpose (no torch, crafter or procgen): the operator image, the local runner and the
trainer all import the shared models from here.
"""

API_GROUP = "envgen.dev"
API_VERSION = "v1alpha1"

__version__ = "0.1.0"
