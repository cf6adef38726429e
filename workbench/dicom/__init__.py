"""Shared low-level DICOM helpers: fast header reading and value conversion."""
