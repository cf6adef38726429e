"""DICOMweb services (PS3.18): QIDO-RS queries, WADO-RS retrieval and STOW-RS storage.

Addresses are written ``dicomweb+http(s)://[USER:PASSWORD@]HOST:PORT/PATH``; the credentials
go to the HTTP session only, never into the index, the logs or a message. Without credentials in
the address, the environment variables ``WORKBENCH_DICOMWEB_USER`` and
``WORKBENCH_DICOMWEB_PASSWORD`` are used when set (the index keeps addresses without them, so a
retrieve after a crawl finds them there).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

from pydicom import Dataset

from workbench.net.association import PacsError
from workbench.net.find import LEVELS, FindReply

#: Results asked for per QIDO-RS page when the server's limit is not known.
DEFAULT_PAGE = 1000


@dataclass(frozen=True)
class DicomwebAddress:
    """A DICOMweb service root, without credentials, and the credentials apart."""

    url: str
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return "dicomweb+" + self.url

    def __repr__(self) -> str:
        return f"DicomwebAddress({str(self)!r})"


def is_dicomweb(url: str) -> bool:
    """Whether ``url`` is a ``dicomweb+http(s)://`` address."""
    return url.strip().lower().startswith(("dicomweb+http://", "dicomweb+https://"))


def parse_dicomweb(url: str) -> DicomwebAddress:
    """The :class:`DicomwebAddress` of ``dicomweb+http(s)://[USER:PASSWORD@]HOST:PORT/PATH``.

    Raises
    ------
    ValueError
        When ``url`` is not of that form (the message never repeats a password).
    """
    if not is_dicomweb(url):
        raise ValueError(f"{url.split('@')[-1]!r} is not a DICOMweb address of the form "
                         "dicomweb+http(s)://HOST:PORT/PATH")
    parts = urllib.parse.urlsplit(url.strip()[len("dicomweb+"):])
    if not parts.hostname:
        raise ValueError(f"dicomweb+{parts.scheme}://...{parts.path}: no host in the DICOMweb address")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    username = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    return DicomwebAddress(clean, username, password)


def client(address: DicomwebAddress, timeout: float = 30.0):
    """A ``dicomweb_client.DICOMwebClient`` for ``address``, with its credentials if any."""
    from dicomweb_client import DICOMwebClient
    from dicomweb_client.session_utils import create_session, create_session_from_user_pass

    username = address.username or os.environ.get("WORKBENCH_DICOMWEB_USER")
    password = address.password if address.username else os.environ.get("WORKBENCH_DICOMWEB_PASSWORD")
    session = create_session_from_user_pass(username, password or "") if username else create_session()
    web = DICOMwebClient(address.url, session=session, timeout=timeout)
    # dicomweb-client's default (5 attempts, 1 s doubling) keeps an unreachable server 30 s; the
    # crawl retries failed queries itself, and an interrupted retrieve resumes.
    web.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=250)
    return web


def http_failure(address: DicomwebAddress, what: str, exc: Exception) -> PacsError:
    """A :class:`PacsError` saying in one sentence why an HTTP request for ``what`` failed."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        advice = {401: "give a user and password in the address", 403: "ask for access to this service",
                  404: "check the service root path"}.get(code, "ask the PACS administrator")
        return PacsError(f"{address} answered {what} with HTTP {code} {exc.response.reason}", advice)
    if isinstance(exc, requests.Timeout):
        return PacsError(f"{address} did not answer {what} in time", "try again later, or raise the timeout")
    if isinstance(exc, requests.ConnectionError):
        return PacsError(f"{address} cannot be reached for {what}",
                         "check host, port and path; ask the PACS administrator whether it listens there")
    return PacsError(f"{address} failed {what}: {type(exc).__name__}: {exc}", "ask the PACS administrator")


class DicomwebFinder:
    """QIDO-RS queries (PS3.18 Section 10.6) paged with ``limit`` and ``offset``.

    Parameters
    ----------
    url : str
        ``dicomweb+http(s)://HOST:PORT/PATH``.
    timeout : float
        Seconds for each HTTP request.
    max_results : int or None
        The server's limit of results per query, when known: pages of this size are fetched
        until one comes back short, and a reply of at least this many results is taken as
        capped (its counts then tell whether anything is missing).
    """

    def __init__(self, url: str, *, timeout: float = 30.0, max_results: int | None = None) -> None:
        self.address = parse_dicomweb(url)
        self.source = str(self.address)
        self.max_results = max_results
        self.page = max_results or DEFAULT_PAGE
        self._client = client(self.address, timeout)

    def find(self, level: str, keys: dict[str, str]) -> FindReply:
        """Run one query at ``level``, every page of it.

        Raises
        ------
        PacsError
            When the server cannot be reached, times out or answers with an HTTP error.
        """
        if level not in LEVELS:
            raise ValueError(f"query level {level!r} is not one of {', '.join(LEVELS)}")
        filters = {k: v for k, v in keys.items() if v and k not in ("StudyInstanceUID", "SeriesInstanceUID")}
        fields = [k for k, v in keys.items() if not v]
        search = {
            "STUDY": self._client.search_for_studies,
            "SERIES": self._client.search_for_series,
            "IMAGE": self._client.search_for_instances,
        }[level]
        scope = {}
        if level != "STUDY" and keys.get("StudyInstanceUID"):
            scope["study_instance_uid"] = keys["StudyInstanceUID"]
        if level == "IMAGE" and keys.get("SeriesInstanceUID"):
            scope["series_instance_uid"] = keys["SeriesInstanceUID"]
        reply = FindReply()
        offset = 0
        while True:
            try:
                page = search(**scope, fields=fields, search_filters=filters, limit=self.page, offset=offset)
            except Exception as exc:  # noqa: BLE001 - requests' errors become one sentence
                raise http_failure(self.address, f"a {level} query", exc) from None
            reply.identifiers.extend(Dataset.from_json(match) for match in page)
            if len(page) < self.page:
                break
            offset += len(page)
        if self.max_results and len(reply.identifiers) >= self.max_results:
            # Servers may stop paging at their limit without the Warning header of PS3.18
            # Section 8.3.4.4 (Orthanc does, after one more result than the limit).
            reply.capped, reply.reason = True, f"as many results as the limit ({self.max_results})"
        return reply

    def close(self) -> None:
        """Close the HTTP session."""
        self._client._session.close()

    def __enter__(self) -> DicomwebFinder:
        # An unreachable or refusing server is an error of the whole crawl, not of one query.
        try:
            self._client.search_for_studies(limit=1, fields=["StudyInstanceUID"])
        except Exception as exc:  # noqa: BLE001 - requests' errors become one sentence
            raise http_failure(self.address, "a first query", exc) from None
        return self

    def __exit__(self, *_) -> None:
        self.close()
