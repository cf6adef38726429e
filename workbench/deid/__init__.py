"""De-identification: the PS3.15 Annex E profile as data, the anonymizer, export and verification.

Names are imported from their modules on first use.
"""

from typing import Any

_NAMES = {
    "OPTIONS": "profile", "Profile": "profile",
    "Anonymizer": "anonymize",
    "BlankingRule": "exporter", "ExportResult": "exporter", "export": "exporter", "load_key": "exporter",
    "PhiValue": "verify", "Finding": "verify", "phi_values": "verify", "verify_export": "verify",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(f"workbench.deid.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'workbench.deid' has no attribute {name!r}")
