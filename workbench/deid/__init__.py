"""De-identification: the PS3.15 Annex E profile as data, the anonymizer, export and verification.

Names are imported from their modules on first use.
"""

from workbench.lazy import lazy_attributes

_NAMES = {
    "OPTIONS": ".profile", "Profile": ".profile",
    "Anonymizer": ".anonymize",
    "BlankingRule": ".exporter", "ExportResult": ".exporter", "export": ".exporter", "load_key": ".exporter",
    "load_blanking_rules": ".exporter",
    "PhiValue": ".verify", "Finding": ".verify", "phi_values": ".verify", "verify_export": ".verify",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
