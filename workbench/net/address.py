"""PACS addresses: ``dicom://AET@HOST:PORT`` (DIMSE, PS3.7 and PS3.8), ``dicoms://`` over TLS
(PS3.15 Annex B.1, The Basic TLS Secure Transport Connection Profile)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# An AE title: 1-16 characters of the default repertoire, no backslash or control characters
# (PS3.5 Table 6.2-1, VR AE); leading and trailing spaces are not significant.
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
_URL = re.compile(r"(?P<scheme>dicoms?)://(?P<aet>[^@/]+)@(?P<host>\[[0-9a-fA-F:]+\]|[^:/@]+):(?P<port>\d+)/?")


@dataclass(frozen=True)
class TlsFiles:
    """What a TLS association uses: the CA certificates that sign the PACS's certificate
    (None: the system's), and this side's certificate and key when the PACS asks for one."""

    ca: str | None = None
    certificate: str | None = None
    key: str | None = None

    def context(self):
        """An ``ssl.SSLContext`` verifying the PACS (host name included) with these files.

        Raises
        ------
        ValueError
            When a file cannot be read or is not a certificate or key.
        """
        import ssl

        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
            if self.certificate:
                context.load_cert_chain(self.certificate, self.key)
        except (OSError, ssl.SSLError) as exc:
            files = " ".join(f for f in (self.ca, self.certificate, self.key) if f) or "(system CAs)"
            raise ValueError(f"TLS files {files} cannot be used: {exc}") from None
        return context


@dataclass(frozen=True)
class PacsAddress:
    """Where a DICOM peer listens: its called AE title, host and port, and TLS when used."""

    called_aet: str
    host: str
    port: int
    tls: TlsFiles | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"dicom{'s' if self.tls else ''}://{self.called_aet}@{host}:{self.port}"


def check_ae_title(title: str, what: str = "AE title") -> str:
    """``title`` stripped, if it is a valid AE title.

    Raises
    ------
    ValueError
        When ``title`` is empty, longer than 16 characters or holds a backslash or a control
        character.
    """
    stripped = title.strip()
    if not _AE_TITLE.fullmatch(stripped):
        raise ValueError(f"{what} {title!r} is not an AE title (1-16 printable characters, no backslash)")
    return stripped


def parse_address(url: str, tls: TlsFiles | None = None) -> PacsAddress:
    """The :class:`PacsAddress` of ``dicom://AET@HOST:PORT`` or ``dicoms://AET@HOST:PORT``.

    ``tls`` gives the TLS files; with them, or with ``dicoms://``, associations use TLS.

    Raises
    ------
    ValueError
        When ``url`` is not of that form, the AE title is invalid or the port is not 1-65535.
    """
    match = _URL.fullmatch(url.strip())
    if not match:
        raise ValueError(f"{url!r} is not a PACS address of the form dicom://AET@HOST:PORT "
                         "(or dicoms:// for TLS)")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"{url!r}: port {port} is not between 1 and 65535")
    host = match["host"].strip("[]")
    if match["scheme"] == "dicoms" and tls is None:
        tls = TlsFiles()
    return PacsAddress(check_ae_title(match["aet"], f"{url!r}: the called AE title"), host, port, tls)
