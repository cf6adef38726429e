"""DICOM over TLS (PS3.15 Annex B.1) against an Orthanc that requires it, with certificates made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pydicom
import pytest
from conftest import ORTHANC_AET, TEST_AET, running_orthanc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from workbench.index.remote import crawl_pacs
from workbench.net import PacsError, echo, send
from workbench.net.address import TlsFiles


def _certificate(folder: Path, name: str, issuer: tuple | None, ip: str | None = None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True))
    if ip:
        names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(names, critical=False)
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()))
    return certificate, key


@pytest.fixture(scope="module")
def tls_pacs(tmp_path_factory):
    """Orthanc speaking DICOM over TLS only, requiring a client certificate signed by our CA."""
    root = tmp_path_factory.mktemp("tls")
    ca = _certificate(root, "ca", None)
    _certificate(root, "orthanc", ca, ip="127.0.0.1")
    _certificate(root, "client", ca)
    _certificate(root, "stranger-ca", None)
    with running_orthanc(root, DicomTlsEnabled=True, DicomTlsCertificate=str(root / "orthanc.crt"),
                         DicomTlsPrivateKey=str(root / "orthanc.key"),
                         DicomTlsTrustedCertificates=str(root / "ca.crt"),
                         DicomTlsRemoteCertificateRequired=True) as server:
        server.files = root
        yield server


def _files(server, ca: str = "ca.crt", client: bool = True) -> TlsFiles:
    folder = server.files
    if not client:
        return TlsFiles(str(folder / ca))
    return TlsFiles(str(folder / ca), str(folder / "client.crt"), str(folder / "client.key"))


def test_echo_send_and_crawl_over_tls(tls_pacs, pydicom_files, tmp_path):
    url = f"dicoms://{ORTHANC_AET}@127.0.0.1:{tls_pacs.dicom_port}"
    checks = echo(url, calling_aet=TEST_AET, tls=_files(tls_pacs))
    assert all(c.ok for c in checks), checks
    result = send([pydicom_files / "CT_small.dcm"], url, calling_aet=TEST_AET, tls=_files(tls_pacs),
                  quiet=True)
    assert result.sent == 1, result.failed
    assert tls_pacs.rest("/statistics")["CountInstances"] == 1
    index = crawl_pacs(url, tmp_path / "index", calling_aet=TEST_AET, tls=_files(tls_pacs), quiet=True)
    expected = pydicom.dcmread(pydicom_files / "CT_small.dcm").SOPInstanceUID
    assert list(index.instances["SOPInstanceUID"]) == [expected]
    assert list(index.instances["source"]) == [url]


def test_plain_dicom_to_a_tls_port_says_so(tls_pacs):
    (check,) = echo(f"dicom://{ORTHANC_AET}@127.0.0.1:{tls_pacs.dicom_port}", calling_aet=TEST_AET, timeout=5)
    assert not check.ok and "a TLS port needs dicoms://" in check.detail


def test_a_pacs_certificate_from_another_ca_is_refused(tls_pacs):
    url = f"dicoms://{ORTHANC_AET}@127.0.0.1:{tls_pacs.dicom_port}"
    (check,) = echo(url, calling_aet=TEST_AET, tls=_files(tls_pacs, ca="stranger-ca.crt"), timeout=5)
    assert not check.ok and "failed the TLS handshake" in check.detail
    assert "CERTIFICATE_VERIFY_FAILED" in check.detail


def test_without_our_certificate_the_pacs_closes_the_connection(tls_pacs, tmp_path):
    with pytest.raises(PacsError, match="certificate of ours|TLS"):
        crawl_pacs(f"dicoms://{ORTHANC_AET}@127.0.0.1:{tls_pacs.dicom_port}", tmp_path / "index",
                   calling_aet=TEST_AET, tls=_files(tls_pacs, client=False), timeout=5, quiet=True)
