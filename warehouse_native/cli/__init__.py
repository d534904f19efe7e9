"""CLI layer: click commands parse flags, call the layers below, print."""
