"""``wn seed``: write deterministic demo data into the target warehouse."""

from __future__ import annotations

import time

import click

from .console import console
from .flags import Flags, common_flags


@click.command("seed")
@click.option("--users", type=click.IntRange(min=100), default=20_000, show_default=True,
              help="Number of simulated users.")
@click.option("--days", type=click.IntRange(min=2), default=29, show_default=True,
              help="Days of data from 2026-10-01 (29: through the demo experiment's last day, 2026-10-29).")
@click.option("--seed", "seed_", type=int, default=7, show_default=True, help="Random seed.")
@common_flags
def command(flags: Flags, users: int, days: int, seed_: int) -> None:
    """Write the demo tables raw.exposures and raw.events (replacing them)."""
    from ..demo import DemoConfig, generate_demo
    from ..warehouse import connect

    target = flags.load_target()
    t0 = time.perf_counter()
    with console.status("generating demo data"):
        try:
            config = DemoConfig(users=users, days=days, seed=seed_)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        tables = generate_demo(config)
    with connect(target) as adapter, console.status(f"writing to {target.describe()}"):
        counts = {name: adapter.load_columns(name, columns) for name, columns in tables.items()}
    for name, n in counts.items():
        console.print(f"  [green]wrote[/green] {name}: {n:,} rows")
    console.print(f"seeded {target.describe()} in {time.perf_counter() - t0:.1f}s "
                  f"(users={users:,}, days={days}, seed={seed_})")
