"""The ``edgesplit`` command line: one sub-command group per component."""

from __future__ import annotations

import typer

from edgesplit import __version__
from edgesplit.cloud_cli import cloud_app
from edgesplit.demo import demo_command
from edgesplit.device_cli import device_app
from edgesplit.errors import EdgesplitError
from edgesplit.eval_cli import eval_command
from edgesplit.phone_cli import phone_app
from edgesplit.sim_cli import sim_app

app = typer.Typer(
    help="edgesplit: split AI work between a wearable, its phone and the cloud, and measure it.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(device_app, name="device")
app.add_typer(cloud_app, name="cloud")
app.add_typer(sim_app, name="sim")
app.add_typer(phone_app, name="phone")
app.command("demo")(demo_command)
app.command("eval")(eval_command)


@app.command()
def version() -> None:
    """Print the edgesplit version."""
    typer.echo(__version__)


def main() -> None:
    """Console entry point: any error a user can act on is one line on stderr, exit status 2."""
    try:
        app()
    except EdgesplitError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
