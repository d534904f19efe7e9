"""wn: a warehouse-native experiment metrics pipeline.

Layers (each imports only those below it): cli -> runner -> project / plan / sql /
warehouse / stats.  See README.md and docs/ for the contracts.
"""

__version__ = "0.1.0"
