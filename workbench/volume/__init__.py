"""Series into SimpleITK volumes with correct geometry; reformatting, windowing and rendering."""

from workbench.volume.geometry import SeriesGeometryError, SeriesPlan
from workbench.volume.load import SeriesWarning, inspect_series, load_series, save_volume

__all__ = [
    "SeriesGeometryError", "SeriesPlan", "SeriesWarning", "inspect_series", "load_series", "save_volume",
]
