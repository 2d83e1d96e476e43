"""Errors a user can cause. Each carries one line that names the field, the value and the fix.

Command-line tools catch `NacError`, print its message on one line to stderr and exit with
its `exit_code` (2 for input errors; see `nac.cli`). Library code raises these and never
prints or exits.
"""


class NacError(ValueError):
    """Base class of every error caused by user input (files, flags, statistics)."""

    exit_code = 2

    @classmethod
    def got(cls, where: str, value, fix: str):
        """The one-line message of a bad value: `where: got value; fix` (raise the result)."""
        return cls(f"{where}: got {value!r}; {fix}")


class SpecError(NacError):
    """An architecture, stem or head description is invalid."""


class ConfigError(NacError):
    """An original v2.0 configuration file or a run configuration is invalid."""


class StatsError(NacError):
    """Featuremap statistics are missing, malformed or do not match the architecture."""


class RestructureError(NacError):
    """The restructure step cannot be applied to this architecture and policy."""


class NothingToPruneError(RestructureError):
    """A stage selected for restructuring has no branch that may be pruned."""


class DataError(NacError):
    """A dataset is missing, corrupt or misconfigured."""


class RunError(NacError):
    """A run directory cannot be used as asked (for example, resumed with other flags)."""


class WriteError(NacError):
    """A file of a run could not be written (no space, no permission, quota); exit status 4."""

    exit_code = 4


class FailedError(NacError):
    """TensorFlow failed while running a step (not a user error); one line, exit status 1."""

    exit_code = 1
