"""Find the files under crawl sources: folders (following symlinks safely) and zip archives."""

from __future__ import annotations

import errno
import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from workbench.index.reader import FileItem


@dataclass(frozen=True)
class WalkError:
    """A path the walk could not use, for the ``errors`` table."""

    item: FileItem
    error: str
    message: str


def is_zip_path(path: str) -> bool:
    """Whether ``path`` names a zip archive to crawl into (by its extension)."""
    return path.lower().endswith(".zip")


def walk(source: str) -> Iterator[FileItem | WalkError]:
    """Yield every regular file under ``source``, with its size and mtime.

    Zip archives are yielded as files; :func:`zip_members` lists their members.
    Symbolic links to folders are followed once; a link back to a folder being
    walked (a loop) is reported, and so are broken links and folders that
    cannot be listed.

    Parameters
    ----------
    source : str
        An absolute path to a folder or a file.

    Yields
    ------
    FileItem or WalkError
    """
    try:
        info = os.stat(source)
    except OSError as exc:
        yield _error(source, source, exc)
        return
    if not stat.S_ISDIR(info.st_mode):
        yield FileItem(source, None, source, info.st_size, info.st_mtime_ns)
        return
    # Each entry carries the (device, inode) of the folders above it, to tell loops.
    stack: list[tuple[str, frozenset[tuple[int, int]]]] = [
        (source, frozenset({(info.st_dev, info.st_ino)}))
    ]
    seen = {(info.st_dev, info.st_ino)}
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield _error(folder, source, exc)
            continue
        for entry in entries:
            try:
                st = entry.stat()
            except OSError as exc:
                yield _error(entry.path, source, exc)
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    yield WalkError(
                        FileItem(entry.path, None, source, None, None),
                        "symlink_loop",
                        "a symbolic link back to a folder above it (a loop); not followed",
                    )
                elif key not in seen:
                    seen.add(key)
                    stack.append((entry.path, ancestors | {key}))
            elif stat.S_ISREG(st.st_mode):
                yield FileItem(entry.path, None, source, st.st_size, st.st_mtime_ns)


def _error(path: str, source: str, exc: OSError) -> WalkError:
    item = FileItem(path, None, source, None, None)
    if exc.errno == errno.ELOOP:
        return WalkError(item, "symlink_loop", "a symbolic link that points back to itself (a loop)")
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return WalkError(item, "broken_link", f"a symbolic link to a missing target ({os.readlink(path)})")
    if exc.errno == errno.ENOENT:
        return WalkError(item, "missing", "does not exist")
    return WalkError(item, "unreadable", f"cannot be read: {exc.strerror or exc}")


def zip_members(archive: FileItem) -> Iterator[FileItem | WalkError]:
    """Yield the file members of a zip archive found by :func:`walk`.

    Members carry the archive's path and mtime and their own uncompressed size.
    """
    try:
        with zipfile.ZipFile(archive.path) as zf:
            infos = zf.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        yield WalkError(archive, "bad_zip", f"a .zip file that cannot be opened as an archive: {exc}")
        return
    for info in infos:
        if not info.is_dir():
            yield FileItem(archive.path, info.filename, archive.source, info.file_size, archive.mtime_ns)
