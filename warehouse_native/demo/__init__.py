"""Demo data: a deterministic, vectorised generator of ``raw.exposures`` and ``raw.events``.

``generate_demo(DemoConfig(...))`` returns ``{table: {column: numpy array}}`` for the tables in
``DEMO_TABLES``; :mod:`warehouse_native.demo.story` holds every rate and planted effect.
"""

from .generator import DEMO_TABLES, DemoConfig, generate_demo

__all__ = ["DEMO_TABLES", "DemoConfig", "generate_demo"]
