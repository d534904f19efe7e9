"""Warehouse layer: adapters that connect, execute, fetch and publish atomically."""

from .adapter import Adapter, as_warehouse_error
from .connect import connect
from .tables import TABLES, unit_metrics_table

__all__ = ["Adapter", "TABLES", "as_warehouse_error", "connect", "unit_metrics_table"]
