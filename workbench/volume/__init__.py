"""Series into SimpleITK volumes with correct geometry; reformatting, windowing and rendering."""

from workbench.volume.geometry import SeriesGeometryError, SeriesPlan
from workbench.volume.load import SeriesWarning, inspect_series, load_series, save_volume
from workbench.volume.reformat import reformat
from workbench.volume.render import render_montage, render_png, to_display
from workbench.volume.window import CT_PRESETS, auto_window, window_level

__all__ = [
    "CT_PRESETS", "SeriesGeometryError", "SeriesPlan", "SeriesWarning", "auto_window", "inspect_series",
    "load_series", "reformat", "render_montage", "render_png", "save_volume", "to_display", "window_level",
]
