"""Where model files live and whether they are there: the one answer to "is it installed".

Plain Python, no Django (the ground layer: presets, downloads and templates_scan all ask it).
ComfyUI looks for a folder's files under the model root, in legacy folder names (``clip`` for
text_encoders, ``unet`` for diffusion_models...) and in the folders ``extra_model_paths.yaml``
lists; a file in any of them counts as installed, unless it is a link whose target leaves every
one of those directories. A NEW download always goes to ``<model root>/<folder>/<name>``.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_DRIVE_RE = re.compile(r"^[A-Za-z]:")
UNSAFE_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")
#: The longest preset file path, in characters (the database column is made to it).
MAX_PATH_CHARS = 500
# Linux limits, in bytes of the encoded name: NAME_MAX per path component, PATH_MAX for the
# whole path with its terminating NUL. A download first writes "<name>.part".
NAME_MAX = 255
PATH_MAX = 4096
PART_SUFFIX = ".part"

#: folder_paths.map_legacy: names that older workflows / extra_model_paths.yaml still use.
LEGACY_FOLDERS: dict[str, str] = {"clip": "text_encoders", "unet": "diffusion_models"}

#: Canonical folder -> directories (relative to the model root) ComfyUI searches, in order.
#: Mirrors folder_paths.folder_names_and_paths; a folder missing here (e.g. one a custom
#: node registers, like "ipadapter") is looked for in ``<model root>/<folder>``.
DEFAULT_FOLDER_DIRS: dict[str, tuple[str, ...]] = {
    "checkpoints": ("checkpoints",),
    "configs": ("configs",),
    "loras": ("loras",),
    "vae": ("vae",),
    "text_encoders": ("text_encoders", "clip"),
    "diffusion_models": ("unet", "diffusion_models"),
    "clip_vision": ("clip_vision",),
    "style_models": ("style_models",),
    "embeddings": ("embeddings",),
    "diffusers": ("diffusers",),
    "vae_approx": ("vae_approx",),
    "controlnet": ("controlnet", "t2i_adapter"),
    "gligen": ("gligen",),
    "upscale_models": ("upscale_models",),
    "latent_upscale_models": ("latent_upscale_models",),
    "hypernetworks": ("hypernetworks",),
    "photomaker": ("photomaker",),
    "classifiers": ("classifiers",),
    "model_patches": ("model_patches",),
    "audio_encoders": ("audio_encoders",),
}


def canonical_folder(name: str) -> str:
    """folder_paths.map_legacy: ``clip`` -> ``text_encoders``, ``unet`` -> ``diffusion_models``."""
    return LEGACY_FOLDERS.get(name, name)


def unsafe_path_reason(path, model_root=None):
    """Why a preset file path may not be written under the model root, or None when it is safe.

    Names are measured as the file system stores them, in bytes of UTF-8, and with the
    ".part" a download writes first: a path the worker could not create is refused here,
    before any job can trip over it. With `model_root`, the whole path under it must fit too.
    """
    if not path.strip():
        return "must not be empty"
    if len(path) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if UNSAFE_PATH_CHARS.search(path):
        return 'contains a control character, backslash or one of : * ? " < > |'
    if path.startswith("/") or path.startswith("~"):
        return "must be relative to the model root, not absolute"
    parts = path.split("/")
    if ".." in parts:
        return "must not contain '..'"
    if any(part in ("", ".") for part in parts):
        return "must not contain empty or '.' components"
    if any(part.startswith(".") for part in parts):
        return "must not contain hidden ('.'-prefixed) names"
    if posixpath.normpath(path) != path or posixpath.isabs(posixpath.normpath(path)):
        return "would land outside the model root"
    if len(parts) < 2:
        return "must name a model folder, e.g. 'checkpoints/model.safetensors'"
    if any(part.endswith(PART_SUFFIX) for part in parts):
        return f"must not have a name ending in '{PART_SUFFIX}' (reserved for partial downloads)"
    *folders, name = path.encode("utf-8").split(b"/")
    for folder in folders:
        if len(folder) > NAME_MAX:
            return (
                f"has a folder name of {len(folder)} bytes in UTF-8; "
                f"the file system allows at most {NAME_MAX} bytes per name"
            )
    name_max = NAME_MAX - len(PART_SUFFIX)
    if len(name) > name_max:
        return (
            f"has a file name of {len(name)} bytes in UTF-8; at most {name_max} bytes are allowed "
            f"(the file system's {NAME_MAX}, less the '{PART_SUFFIX}' of a download under way)"
        )
    if model_root is not None:
        whole = len(os.fsencode(os.path.join(model_root, path + PART_SUFFIX)))
        if whole >= PATH_MAX:
            return (
                f"would make a path of {whole} bytes under the model root; "
                f"the file system allows at most {PATH_MAX - 1}"
            )
    return None


def new_download_path(model_root: Path, path: str) -> Path:
    """Where a NEW download of a preset file goes: always ``<model root>/<folder>/<name>``,
    never an extra path or a legacy folder (those only count when a file is already there)."""
    return Path(model_root) / path


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PART_SUFFIX)


def validator_path(dest: Path) -> Path:
    """Where the version of the file that ``<dest>.part`` holds is kept: ``.<name>.if-range``.

    A resume sends it as If-Range, so a server whose file changed sends the whole new file
    instead of the rest of it, and the .part is never spliced from two versions. It holds the
    first response's strong ETag, else its Last-Modified date, or nothing when the server gave
    neither. It lives in a small file next to the .part rather than in the job's row because
    it describes those bytes, whoever resumes them: it survives a kill -9 and a new job for the
    same file, needs no database (the engine stays Django-free, the benchmark and tests use it
    as is), and is written before the first byte of a new .part. Hidden, so no preset path can
    name it (the catalogue refuses hidden names). Delete the two together: `remove_partial`.
    A record that cannot be written (a name within 10 bytes of the 255-byte limit) is left
    out, and that .part is not resumed without a sha256 (see `downloads.engine._attempt`).
    """
    return dest.with_name(f".{dest.name}.if-range")


def ranges_path(dest: Path) -> Path:
    """Where the byte ranges already in ``<dest>.part`` are kept when it is fetched over several
    connections: ``.<name>.ranges``. Such a .part has the file's full size from the start (holes
    included), so only this record says what it holds; without it the .part is a plain prefix.
    Written before the .part is grown to full size, and deleted after it (`remove_partial`)."""
    return dest.with_name(f".{dest.name}.ranges")


@dataclass(frozen=True)
class RangesRecord:
    """What ``.<name>.ranges`` says: the file's size and the [start, end) ranges on disk.

    same_boot: written since the machine last started. After a reboot the ranges written last
    may not have reached the disk (the record is kept current, the data is synced at the end).
    """

    size: int
    done: tuple[tuple[int, int], ...]
    same_boot: bool

    @property
    def done_bytes(self) -> int:
        return sum(end - start for start, end in self.done)

    @property
    def prefix(self) -> int:
        """The bytes done from the start on, without a gap."""
        return self.done[0][1] if self.done and self.done[0][0] == 0 else 0


def read_ranges(dest: Path) -> RangesRecord | None:
    """The record of ``<dest>.part``'s ranges, or None when there is none or it is unreadable
    (a planted symbolic link is not followed)."""
    try:
        fd = os.open(ranges_path(dest), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(1 << 20))
        size = int(data["size"])
        done = tuple((int(start), int(end)) for start, end in data["done"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if any(not 0 <= start < end <= size for start, end in done):
        return None
    return RangesRecord(size=size, done=done, same_boot=data.get("boot") == _boot_id())


def write_ranges(dest: Path, size: int, done: Iterable[tuple[int, int]], *, durable: bool = False) -> None:
    """Replace the record of ``<dest>.part``'s ranges in one step (a crash leaves the old one or
    the new one). durable: also fsync it and its folder, for the record that must exist before
    the .part grows to full size."""
    path = ranges_path(dest)
    temporary = path.with_name(path.name + ".new")
    text = json.dumps({"size": size, "done": [list(pair) for pair in done], "boot": _boot_id()})
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(fd, text.encode())
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    if durable:
        fsync_dir(path.parent)


def partial_bytes(dest: Path) -> int:
    """How much of `dest` a download under way holds on disk (0 when none is under way)."""
    record = read_ranges(dest)
    if record is not None:
        return record.done_bytes
    try:
        return part_path(dest).stat().st_size
    except OSError:
        return 0


def free_space(path: Path, reserve: int = 0) -> int:
    """Bytes downloads may still write on the file system that holds `path` (or its nearest
    folder that exists): what is free there less the `reserve` to leave (DOWNLOAD_DISK_RESERVE).
    The one measure of room: the engine checks each file against it, the queue each preset
    before queueing it. Negative when less than the reserve is free."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free - reserve


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in `path` durable."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def remove_partial(dest: Path) -> None:
    """Delete the .part of `dest`, then the records of its version and ranges (in that order: a
    full-size .part never stays without the record of what it holds)."""
    for path in (part_path(dest), validator_path(dest), ranges_path(dest)):
        path.unlink(missing_ok=True)


class ConfigError(ValueError):
    """extra_model_paths.yaml is unreadable or malformed."""


def is_unsafe_path(path: str) -> bool:
    if not path or "\x00" in path or path.startswith("/") or _DRIVE_RE.match(path):
        return True
    return ".." in path.split("/")


@dataclass
class ModelRoots:
    """Where a folder's files may live: the model root plus extra_model_paths.yaml folders."""

    folders: dict[str, list[Path]]  # canonical folder -> directories to look in, in order
    model_root: Path | None = None  # fallback for folders not in `folders`: <model_root>/<folder>
    _allowed: tuple[tuple, tuple[str, ...]] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_settings(cls, model_root: Path, extra_model_paths: Path | None = None) -> ModelRoots:
        """Mirror folder_paths: the default folders under ``model_root`` (text_encoders also in
        ``clip``, diffusion_models also in ``unet``...), then each extra_model_paths.yaml entry
        appended (or, with ``is_default: true``, put first). Raises :class:`ConfigError` when
        the YAML file is given but unreadable or malformed."""
        root = Path(model_root)
        folders: dict[str, list[Path]] = {name: [root / d for d in dirs] for name, dirs in DEFAULT_FOLDER_DIRS.items()}
        if extra_model_paths is not None:
            for folder, path, is_default in _read_extra_model_paths(Path(extra_model_paths)):
                paths = folders.setdefault(folder, [root / folder])
                if path in paths:
                    if is_default and paths[0] != path:
                        paths.remove(path)
                        paths.insert(0, path)
                elif is_default:
                    paths.insert(0, path)
                else:
                    paths.append(path)
        return cls(folders=folders, model_root=root)

    def directories(self, directory: str) -> list[Path]:
        """Directories searched for a folder (legacy names accepted), in ComfyUI's order."""
        folder = canonical_folder(directory)
        if folder in self.folders:
            return list(self.folders[folder])
        if (
            self.model_root is not None
            and folder
            and "/" not in folder
            and "\\" not in folder
            and folder not in (".", "..")
            and "\x00" not in folder
        ):
            return [self.model_root / folder]
        return []

    def locate(self, ref, walked: dict[str, DiskEntry] | None = None) -> Path | None:
        """The existing regular file for ``ref`` (anything with a folder ``directory`` and a
        ``path`` inside it, like the scanner's ModelRef), first match in search order, or None.

        None for unsafe paths, ``.part`` files, directories, broken links and links whose
        target resolves outside every configured model directory. `walked`: the entries of
        :meth:`walk` by full path; a plain file among them is inside the model directories
        (the walk reached it through real folders), which spares resolving its path.
        """
        rel = ref.path
        if is_unsafe_path(rel) or rel.lower().endswith(PART_SUFFIX):
            return None
        for base in self.directories(ref.directory):
            if walked:
                seen = walked.get(f"{base}{os.sep}{rel}")
                if seen is not None and seen.link is None:
                    return Path(seen.full)
            candidate = base / rel
            try:
                st = os.stat(candidate)
                if not stat.S_ISREG(st.st_mode):
                    continue
                real = os.path.realpath(candidate)
            except (OSError, ValueError):
                continue
            if any(real == r or real.startswith(r + os.sep) for r in self._allowed_roots()):
                return candidate
        return None

    def entries(self, path: str) -> list[Path]:
        """Every name a preset file path (``<folder>/<name>``) has on disk, in each directory
        ComfyUI searches for its folder: regular files, and symbolic links whatever they point
        at (an uninstall unlinks a link, never follows it). Unsafe and ``.part`` paths have none."""
        folder, _, name = path.partition("/")
        if is_unsafe_path(name) or name.lower().endswith(PART_SUFFIX):
            return []
        found = []
        for base in self.directories(folder):
            try:
                mode = os.lstat(base / name).st_mode
            except (OSError, ValueError):
                continue
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                found.append(base / name)
        return found

    def shown(self, entry: Path) -> str:
        """A path as the storage pages and answers show it: relative to the model root for a
        file under it (``loras/x.safetensors``), absolute for one under an extra model path."""
        if self.model_root is not None and entry.is_relative_to(self.model_root):
            return entry.relative_to(self.model_root).as_posix()
        return str(entry)

    def find(self, path: str) -> Path | None:
        """The file a ``<folder>/<name>`` path (a preset file's) names, as `locate` finds it."""
        folder, _, name = path.partition("/")
        return self.locate(_Ref(folder, name))

    def file_sizes(self, paths: Iterable[str]) -> dict[str, int]:
        """Map each ``<folder>/<name>`` path (a preset file's) that is installed to its size.

        One look-up per distinct path: presets share files, so a catalogue of thousands of
        presets costs a few thousand stats, not a directory walk of a multi-terabyte model tree.
        """
        return {path: size for path, (_found, size) in self.locate_paths(paths).items()}

    def locate_paths(
        self, paths: Iterable[str], walked: dict[str, DiskEntry] | None = None
    ) -> dict[str, tuple[Path, int]]:
        """Map each ``<folder>/<name>`` path that is installed to where it was found and its size
        (`walked` as for :meth:`locate`: what the walk saw is not looked at again)."""
        found_at = {}
        for path in set(paths):
            folder, _, name = path.partition("/")
            found = self.locate(_Ref(folder, name), walked)
            if found is None:
                continue
            seen = walked.get(str(found)) if walked else None
            try:
                found_at[path] = (
                    found,
                    seen.size if seen is not None and seen.link is None else os.stat(found).st_size,
                )
            except OSError:
                continue
        return found_at

    def walk(self) -> list[DiskEntry]:
        """Every file and link under the model root and the extra model folders, with os.scandir
        (20,000 files in about a tenth of a second: bench/storage.py).

        Links are listed, never followed: not for sizes, not into folders, except a configured
        folder that is itself a link (``<root>/checkpoints`` pointing at a bigger disk), which is
        where ComfyUI looks. The records beside a ``.part`` (``.<name>.if-range``,
        ``.<name>.ranges``) are its bookkeeping, not files of their own. Sorted by shown path.
        """
        root = str(self.model_root) if self.model_root is not None else None
        configured = {str(d) for dirs in self.folders.values() for d in dirs}
        walker = _Walker(self._allowed_roots(), configured)
        tops = []
        if root is not None:
            tops.append((root, None))
        for folder, dirs in self.folders.items():
            for directory in map(str, dirs):
                if root is None or not (directory == root or directory.startswith(root + os.sep)):
                    tops.append((directory, folder))
        seen = set()
        for top, folder in tops:
            real = os.path.realpath(top)
            if real in seen:
                continue
            seen.add(real)
            walker.walk(top, folder)
        return sorted(walker.entries, key=lambda entry: entry.path)

    def disks(self) -> list[dict]:
        """``shutil.disk_usage`` of each distinct file system among the model directories that exist."""
        found = {}
        tops = ([self.model_root] if self.model_root is not None else []) + [
            d for dirs in self.folders.values() for d in dirs
        ]
        for top in tops:
            try:
                device = os.stat(top).st_dev
            except OSError:
                continue
            if device not in found:
                usage = shutil.disk_usage(top)
                found[device] = {"path": str(top), "total": usage.total, "used": usage.used, "free": usage.free}
        return list(found.values())

    def contains(self, full: str) -> bool:
        """Whether the file or link at `full` itself lies inside the model directories: its folder
        is resolved, its own name is not (a link is judged by where it is, not where it points)."""
        parent = os.path.realpath(os.path.dirname(full))
        return any(parent == r or parent.startswith(r + os.sep) for r in self._allowed_roots())

    def remove(self, full: str) -> None:
        """Delete a file or link under the model directories, never following a link: a link is
        unlinked, its target left alone. Raises OSError, or :class:`Refused` for a path outside
        the model directories or a folder. A ``.part`` goes with the records of its version and
        ranges."""
        if not self.contains(full):
            raise Refused("not inside the model root or an extra model path")
        if stat.S_ISDIR(os.lstat(full).st_mode):
            raise Refused("a folder, not a file")
        if full.endswith(PART_SUFFIX):
            remove_partial(Path(full[: -len(PART_SUFFIX)]))
        else:
            os.unlink(full)

    def _allowed_roots(self) -> tuple[str, ...]:
        snapshot = (self.model_root, tuple((k, tuple(v)) for k, v in self.folders.items()))
        if self._allowed is not None and self._allowed[0] == snapshot:
            return self._allowed[1]
        roots: list[str] = []
        for p in ([self.model_root] if self.model_root is not None else []) + [
            d for dirs in self.folders.values() for d in dirs
        ]:
            try:
                r = os.path.realpath(p)
            except (OSError, ValueError):
                continue
            if r not in roots and r != os.sep:
                roots.append(r)
        self._allowed = (snapshot, tuple(roots))
        return self._allowed[1]


class Refused(Exception):
    """A path the storage module will not delete, with the reason."""


@dataclass(frozen=True, slots=True)
class DiskEntry:
    """A file or link found under the model directories by :meth:`ModelRoots.walk`."""

    path: str  # as shown: relative to the model root for what is under it, else absolute
    full: str  # where it is, as walked (not resolved)
    folder: str  # the canonical model folder it is in ("" directly in the model root)
    name: str  # its path inside the folder: a preset file ``<folder>/<name>`` is this file
    size: int  # bytes: a file's size, 0 for a link (its target is not followed)
    mtime: float
    partial: bool = False  # a download's .part
    partial_bytes: int = 0  # what a .part holds (a parallel download's .part is full-size and sparse)
    link: str | None = None  # for a link: "inside" (the roots), "outside" (leaves them) or "broken"


_BOOKKEEPING = re.compile(r"^\..+\.(if-range|ranges|ranges\.new)$")


class _Walker:
    def __init__(self, allowed: tuple[str, ...], configured: set[str]):
        self.allowed = allowed
        self.configured = configured
        self.entries: list[DiskEntry] = []

    def walk(self, top: str, folder: str | None):
        """Walk `top`, a folder's directory (`folder`) or the model root (folder None: the first
        name under it is the folder, and shown paths are relative to it; else absolute)."""
        shown = "" if folder is None else os.path.abspath(top) + os.sep
        stack = [(top, folder, "", shown)]
        entries, configured = self.entries, self.configured
        while stack:
            directory, folder, inner, shown = stack.pop()
            try:
                listing = os.scandir(directory)
            except OSError:
                continue
            with listing:
                # One loop, no call per file: this is the hot path of a tree of 20,000 files.
                for item in listing:
                    name = item.name
                    try:
                        if item.is_dir(follow_symlinks=False) or (
                            item.is_symlink() and item.path in configured and item.is_dir()
                        ):
                            if folder is None:  # a folder of the model root
                                stack.append((item.path, canonical_folder(name), "", shown + name + "/"))
                            else:
                                stack.append((item.path, folder, inner + name + "/", shown + name + "/"))
                            continue
                        if name[0] == "." and _BOOKKEEPING.match(name):
                            continue
                        st = item.stat(follow_symlinks=False)
                        entry = (shown + name, item.path, folder or "", inner + name, st.st_size, st.st_mtime)
                        if stat.S_ISREG(st.st_mode):
                            if name.endswith(PART_SUFFIX):
                                held = partial_bytes(Path(item.path[: -len(PART_SUFFIX)]))
                                entries.append(DiskEntry(*entry, partial=True, partial_bytes=held))
                            else:
                                entries.append(DiskEntry(*entry))
                        elif stat.S_ISLNK(st.st_mode):
                            entries.append(DiskEntry(*entry[:4], 0, st.st_mtime, link=self._link(item.path)))
                        # sockets, fifos, devices: no model file
                    except OSError:
                        continue  # gone meanwhile

    def _link(self, path: str) -> str:
        if not os.path.exists(path):
            return "broken"
        real = os.path.realpath(path)
        return "inside" if any(real == r or real.startswith(r + os.sep) for r in self.allowed) else "outside"


@dataclass(frozen=True)
class _Ref:
    directory: str
    path: str


def _read_extra_model_paths(yaml_path: Path) -> Iterable[tuple[str, Path, bool]]:
    """utils/extra_config.load_extra_path_config: yields (canonical folder, directory, is_default)."""
    import yaml

    try:
        text = yaml_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{yaml_path}: cannot read: {e}") from None
    try:
        config = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as e:
        raise ConfigError(f"{yaml_path}: invalid YAML: {e}") from None
    if config is None:
        return
    if not isinstance(config, dict):
        raise ConfigError(f"{yaml_path}: expected sections (a mapping) at the top level")
    yaml_dir = yaml_path.resolve().parent
    for section in config.values():
        if not isinstance(section, dict):
            continue
        conf = dict(section)
        base: str | None = None
        if conf.get("base_path") is not None:
            base = os.path.expandvars(os.path.expanduser(str(conf.pop("base_path"))))
            if not os.path.isabs(base):
                base = os.path.join(yaml_dir, base)
        conf.pop("base_path", None)
        is_default = conf.pop("is_default", False) is True
        for key, value in conf.items():
            if not isinstance(key, str) or value is None:
                continue
            lines = value if isinstance(value, list) else str(value).split("\n")
            for line in lines:
                line = str(line).strip()
                if not line:
                    continue
                if base is not None:
                    full = os.path.join(base, line)
                elif os.path.isabs(line):
                    full = line
                else:
                    full = os.path.join(yaml_dir, line)
                yield canonical_folder(key), Path(os.path.normpath(full)), is_default
