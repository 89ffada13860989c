"""pluggy hook specifications of the ``amrbench`` project.

Plugin modules (found through the ``amrbench`` entry-point group, built-ins included)
implement ``amrbench_register`` to add their plugin classes; reporters implement the
event hooks (suite start, cell start/done, shared artifact start/done, suite done).
"""
import pluggy

hookspec = pluggy.HookspecMarker("amrbench")
hookimpl = pluggy.HookimplMarker("amrbench")


@hookspec(historic=True)
def amrbench_register(registry):
    """Add plugin classes: ``registry.add(MyPlugin)``."""


@hookspec
def amrbench_suite_start(suite, cells, done):
    """A run begins: ``cells`` all cells of the grid, ``done`` the keys already stored."""


@hookspec
def amrbench_cell_start(cell):
    """A cell was handed to the executor."""


@hookspec
def amrbench_artifact_start(cell, kind, label):
    """A shared artifact (``kind``, needed by ``cell`` and others) began computing;
    ``label`` says which in words (``amrbench.progress.artifact_label``)."""


@hookspec
def amrbench_artifact_done(cell, kind, label, error):
    """A shared artifact finished; ``error`` is None, or why it failed."""


@hookspec
def amrbench_cell_done(record):
    """A cell finished (ok or failed) and its record was appended to the store."""


@hookspec
def amrbench_suite_done(suite, records):
    """The run ended; ``records`` are the records produced by this run."""


@hookspec
def amrbench_add_commands(subparsers):
    """Add ``amrbench`` subcommands: ``subparsers.add_parser(...)``, each parser with
    ``set_defaults(handler=fn)``; ``fn(args, registry)`` runs it (``loads_plugins=False``
    in the defaults passes None instead of the loaded registry). Implemented by modules of
    the ``amrbench.commands`` entry-point group, which ``amrbench`` imports to build its
    parser: keep them light (import torch and plugins inside the handlers)."""


@hookspec
def amrbench_optional_reporters():
    """Opt-in reporters this plugin offers, as ``{name: enable}``. ``amrbench run
    --reporter NAME`` calls ``enable(settings)`` on the driver before the run
    (``settings``: the run's reporter options, e.g. ``tracking_uri``); ``enable`` raises
    AmrbenchError when the reporter cannot work (a missing extra). Until it is enabled,
    such a reporter's event hooks do nothing (``amrbench.reporting``)."""
