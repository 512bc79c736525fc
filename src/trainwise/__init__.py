"""trainwise: data you can trust -> a structure that runs -> monitoring you can see ->
tuning backed by evidence.

The same verbs as the command line:

    import trainwise
    result = trainwise.run()                      # the whole method on MNIST-1D
    result = trainwise.run("my.toml", model=my_module)
"""

from importlib import import_module
from typing import Any

from trainwise.config import Config, ConfigError, load_config
from trainwise.findings import Finding, Severity, StageFailed, TrainwiseError

# The verbs load torch, Fabric and matplotlib; importing them lazily keeps `import trainwise`
# and `trainwise --help` fast.
_LAZY = {
    "run": "trainwise.recipe",
    "RunResult": "trainwise.recipe",
}

__all__ = ["Config", "ConfigError", "Finding", "Severity", "StageFailed", "TrainwiseError",
           "load_config", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainwise' has no attribute '{name}'")
