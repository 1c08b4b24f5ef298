"""Tiling grids, tiles of an area of interest and the processing-unit model (pure, no I/O)."""
