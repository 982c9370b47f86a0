"""The ``neurocloud`` command line: one module per command, loaded only when run.

>>> from click.testing import CliRunner
>>> CliRunner().invoke(main, ["--help"]).exit_code
0
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click

# command name -> "module:attribute"; each command's module imports its heavy parts itself.
COMMANDS = {
    "demo": "neurocloud.cli.demo:demo",
    "train": "neurocloud.cli.train:train",
    "predict": "neurocloud.cli.predict:predict",
    "explain": "neurocloud.cli.explain:explain",
    "serve": "neurocloud.cli.serve:serve",
    "export": "neurocloud.cli.export:export",
    "deploy": "neurocloud.cli.deploy:deploy",
    "undeploy": "neurocloud.cli.deploy:undeploy",
    "playground": "neurocloud.cli.playground:playground",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(import_module(module), attribute)

    def invoke(self, ctx: click.Context) -> Any:
        # A missing optional package is one line naming the extra, never a traceback.
        try:
            return super().invoke(ctx)
        except ImportError as exc:
            from neurocloud.extras import missing_extra_message

            message = missing_extra_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(cls=LazyGroup)
@click.version_option(package_name="neurocloud")
def main() -> None:
    """neurocloud: train neural networks on NumPy and serve them like a cloud endpoint."""


def run(argv: list[str] | None = None) -> Any:
    return main.main(args=argv, prog_name="neurocloud")
