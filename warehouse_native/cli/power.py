"""``wn power``: placeholder replaced below."""
import click


@click.command("power")
def command() -> None:
    """Estimate sample size and duration for a metric (see README)."""
    raise click.UsageError("not available yet")
