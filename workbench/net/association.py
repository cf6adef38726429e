"""Associations with a DICOM peer (PS3.8 Section 7.1), opened with one clear error when they fail."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from workbench.net.address import PacsAddress, check_ae_title

#: The calling AE title used when none is given.
DEFAULT_CALLING_AET = "WORKBENCH"

# A-ASSOCIATE-RJ reasons (PS3.8 Table 9-21), for a sentence a PACS administrator recognises.
_REJECT_REASONS = {
    (1, 1): "no reason given by the service user",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised: ask the PACS administrator to register it",
    (1, 7): "called AE title not recognised: check the AE title of the PACS",
    (2, 1): "no reason given by the service provider (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


#: The uncompressed transfer syntaxes every storage context offers: Explicit and Implicit VR Little
#: Endian (PS3.5 Section 10).
UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
MAX_CONTEXTS = 128


def storage_contexts(syntaxes: dict[str, set[str] | tuple[str, ...]]) -> list[tuple[str, list[str]]]:
    """Presentation contexts for storing instances of each SOP Class in its transfer syntaxes.

    A context holds one abstract syntax and the acceptor picks one transfer syntax of it (PS3.8
    Section 9.3.2.2), so each SOP Class gets one context for the uncompressed syntaxes and one
    context per other syntax: an instance is then sent, or received, as it is stored, never
    transcoded.
    """
    contexts: list[tuple[str, list[str]]] = []
    for sop_class in sorted(syntaxes):
        contexts.append((sop_class, list(UNCOMPRESSED)))
        others = sorted(set(syntaxes[sop_class]) - set(UNCOMPRESSED))
        contexts.extend((sop_class, [syntax]) for syntax in others)
    return contexts


def grouped_by_class(contexts: list[tuple[str, list[str]]], room: int = MAX_CONTEXTS) -> list[list[tuple]]:
    """``contexts`` in groups of at most ``room``, the contexts of one SOP Class in the same group."""
    groups: list[list[tuple]] = [[]]
    for sop_class in dict.fromkeys(uid for uid, _ in contexts):
        own = [c for c in contexts if c[0] == sop_class]
        if groups[-1] and len(groups[-1]) + len(own) > room:
            groups.append([])
        groups[-1].extend(own[:room])
    return [group for group in groups if group]


class PacsError(Exception):
    """A DICOM peer could not be reached, refused the association or a request failed.

    Attributes
    ----------
    advice : str
        What the user can do about it (or ask the PACS administrator for).
    """

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.advice = advice


@contextmanager
def associate(
    address: PacsAddress,
    contexts: Iterable[tuple[str, Iterable[str] | None]],
    *,
    calling_aet: str = DEFAULT_CALLING_AET,
    timeout: float = 10.0,
    scp_roles: Iterable[str] = (),
    evt_handlers: list | None = None,
) -> Iterator:
    """An established association with ``address``, released at the end of the ``with`` block.

    Parameters
    ----------
    address : PacsAddress
        The peer.
    contexts : iterable of (abstract syntax UID, transfer syntax UIDs or None)
        The presentation contexts to propose (at most 128, PS3.8 Section 9.3.2.2); None proposes
        pynetdicom's default transfer syntaxes.
    calling_aet : str
        This side's AE title.
    timeout : float
        Seconds for the TCP connection, the association negotiation and each reply.
    scp_roles : iterable of str
        Abstract syntaxes for which this side also proposes the SCP role (SCP/SCU Role
        Selection, PS3.7 Section D.3.3.4): the storage classes a C-GET brings back.
    evt_handlers : list, optional
        pynetdicom event handlers bound to the association (e.g. ``EVT_C_STORE``).

    Raises
    ------
    PacsError
        When the peer does not answer within ``timeout``, refuses the connection, or rejects or
        aborts the association; the message names the address and the reason.
    ValueError
        When ``calling_aet`` is not an AE title or more than 128 contexts are asked for.
    """
    from pynetdicom import AE, _config

    # pynetdicom formats every identifier of every C-FIND response for its log, whatever the log
    # level: on an instance-level crawl that is more time than the PACS takes to answer.
    _config.LOG_RESPONSE_IDENTIFIERS = _config.LOG_REQUEST_IDENTIFIERS = False
    ae = AE(ae_title=check_ae_title(calling_aet, "the calling AE title"))
    ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    contexts = list(contexts)
    if len(contexts) > 128:
        raise ValueError(f"{len(contexts)} presentation contexts asked for; an association holds at most 128")
    for abstract, syntaxes in contexts:
        if syntaxes is None:
            ae.add_requested_context(abstract)
        else:
            ae.add_requested_context(abstract, list(syntaxes))
    from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation

    roles = []
    for abstract in scp_roles:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid, role.scu_role, role.scp_role = abstract, False, True
        roles.append(role)
    tls_args = (address.tls.context(), address.host) if address.tls else None
    for _ in range(2):
        began = time.monotonic()
        assoc = ae.associate(address.host, address.port, ae_title=address.called_aet,
                             ext_neg=roles or None, evt_handlers=evt_handlers, tls_args=tls_args)
        # A peer that closes the connection right after its A-ASSOCIATE-RJ may be seen as an
        # abort, which loses the reason: a second attempt usually reads the rejection. (Not
        # after a timeout: that would only double the wait.)
        if assoc.is_established or assoc.is_rejected or time.monotonic() - began > timeout / 2:
            break
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        cause = (primitive.result_source, primitive.diagnostic)
        reason = _REJECT_REASONS.get(cause, "no reason known")
        advice = {
            (1, 3): f"register AE title {calling_aet!r} (and this host) on the PACS",
            (1, 7): "use the PACS's own AE title in dicom://AET@HOST:PORT",
        }.get(cause, "ask the PACS administrator why the association is rejected")
        raise PacsError(f"{address} rejected the association from {calling_aet}: {reason}", advice)
    if not assoc.is_established:
        raise PacsError(
            f"{address} {_unreachable(address, timeout)}",
            "check host, port and firewall; ask the PACS administrator whether it listens there",
        )
    # Requests go out as several small writes; without TCP_NODELAY each may wait for the peer's
    # delayed ACK (40 ms on Linux), longer than most PACSs take to answer a query.
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _unreachable(address: PacsAddress, timeout: float) -> str:
    """Why no association came about, from a plain TCP connection (pynetdicom only says aborted)."""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout) as sock:
            if address.tls:
                import ssl

                try:
                    with address.tls.context().wrap_socket(sock, server_hostname=address.host):
                        pass
                except ssl.SSLError as exc:
                    return f"failed the TLS handshake: {exc.reason or exc}"
                except OSError as exc:  # the PACS closed the connection: it wants a client certificate
                    return (f"closed the TLS connection ({exc.strerror or exc}): does it require "
                            "a certificate of ours?")
            return ("accepted the connection but aborted the association (is it a DICOM port? "
                    "a TLS port needs dicoms://)")
    except ConnectionRefusedError:
        return f"refused the connection: nothing listens on port {address.port} of {address.host}"
    except socket.gaierror:
        return f"cannot be found: no host named {address.host!r}"
    except TimeoutError:
        return f"did not answer within {timeout:g} s (is it running, and is a firewall in the way?)"
    except OSError as exc:
        return f"cannot be reached: {exc.strerror or exc}"


@contextmanager
def requiring(opened, abstract_syntax: str, message: str, advice: str) -> Iterator:
    """The association of ``opened`` (from :func:`associate`), if the peer accepted
    ``abstract_syntax`` on it.

    Raises
    ------
    PacsError
        With ``message`` and ``advice``, when the peer did not accept it.
    """
    with opened as assoc:
        if not any(c.abstract_syntax == abstract_syntax for c in assoc.accepted_contexts):
            raise PacsError(message, advice)
        yield assoc
