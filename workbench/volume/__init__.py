"""Series into SimpleITK volumes with correct geometry; reformatting, windowing and rendering.

Names are imported from their modules on first use, so importing one module of this package
(as the command line does for its error type) does not load SimpleITK and the codecs.
"""

from workbench.lazy import lazy_attributes

_NAMES = {
    "SeriesGeometryError": ".geometry", "SeriesPlan": ".geometry",
    "SeriesWarning": ".load", "inspect_series": ".load", "load_series": ".load", "save_volume": ".load",
    "reformat": ".reformat",
    "render_montage": ".render", "render_png": ".render", "to_display": ".render",
    "CT_PRESETS": ".window", "auto_window": ".window", "window_level": ".window",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
