"""`provisioner wrapper pack`: the stage-two tarball of the pilot wrapper, and stage one beside it.

The tarball (wrapper.py, wrapperlib/, plugins/, lookuptable.conf) holds the
shipped stage two, with a wrapper author's own plugins (--plugins) and lookup
table (--lookuptable) if given. It is reproducible: sorted entries, fixed
mtime/owner/modes and a gzip header without time or name, so the same sources
always give the same sha256, which stage one checks (--wrappertarballchecksum).
Stage one (wrapper.sh) is copied as it is, so that an install without a checkout
has it to serve too (wrapper_url, wrapper_checksum) or to run as a CE's executable.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import io
import logging
import os
import tarfile
from pathlib import Path
from typing import NamedTuple, Optional

from provisioner.errors import InputError, ProvisionerError

MTIME = 946684800  # 2000-01-01: any fixed time will do, but some tars warn about 0
TARBALL = "wrapper.tar.gz"
STAGE_ONE = "wrapper.sh"

log = logging.getLogger(__name__)


class Member(NamedTuple):
    path: Path
    data: Optional[bytes]  # None: a directory
    option: str = ""  # the option that gave it ("--plugins "), which errors name before the path


def wrapper_root() -> Path:
    """Where wrapper/python, wrapper/bash/wrapper.sh and lookuptable.conf are: in an install,
    provisioner/pilotwrapper (setup.cfg puts them there); in a checkout (pip install -e), the
    directory above."""
    here = Path(__file__).resolve().parent
    candidates = (here / "pilotwrapper", here.parent)
    needed = ("wrapper/python/wrapper.py", "wrapper/bash/wrapper.sh", "lookuptable.conf")
    for root in candidates:
        if all((root / name).is_file() for name in needed):
            return root
    raise ProvisionerError(  # a broken installation, not the user's input
        f"pilot wrapper sources ({', '.join(needed)}) not found in "
        f"{candidates[0]} or {candidates[1]}: reinstall provisioner")


@functools.lru_cache(maxsize=None)  # members() and check_table() both read it in one pack
def _lookup(root: Path):
    """Stage two's own table reader and plugin-name rules, not a copy of them."""
    spec = importlib.util.spec_from_file_location("_wrapper_lookup", root / "wrapper/python/wrapperlib/lookup.py")
    lookup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lookup)
    return lookup


def _member(path: Path, option: str = "") -> Member:
    try:
        return Member(path, path.read_bytes(), option)
    except OSError as exc:
        raise InputError(f"{option}{path}: cannot read: {exc.strerror or exc}") from None


def members(root: Path, plugins: str | None = None, lookuptable: str | None = None) -> dict[str, Member]:
    """Name in the tarball -> Member, directories included: the shipped stage two, with the
    *.py files at the top of `plugins` added to plugins/ and `lookuptable` instead of the
    shipped table. An author's file may replace a shipped plugin (logged), not the wrapper's
    own plugins/__init__.py or base.py. InputError if an author's file is unusable."""
    stage_two = root / "wrapper" / "python"
    found = {}
    for path in stage_two.rglob("*"):
        relative = path.relative_to(stage_two)
        if any(part.startswith((".", "__pycache__")) for part in relative.parts):
            continue
        if path.is_dir():
            found[relative.as_posix()] = Member(path, None)
        elif path.suffix == ".py":
            found[relative.as_posix()] = _member(path)
    found["lookuptable.conf"] = _member(root / "lookuptable.conf")
    if lookuptable is not None:
        found["lookuptable.conf"] = _member(Path(lookuptable), "--lookuptable ")
    if plugins is not None:
        if not os.path.isdir(plugins):
            raise InputError(f"--plugins {plugins}: {'not a' if os.path.exists(plugins) else 'no such'} directory")
        authored = sorted(p for p in Path(plugins).glob("*.py") if not p.name.startswith(".") and p.is_file())
        if not authored:
            raise InputError(f"--plugins {plugins}: no *.py file")
        lookup = _lookup(root)
        for path in authored:
            name = f"plugins/{path.name}"
            if name in found:
                if not lookup.PLUGIN_RE.match(path.stem) or path.stem in lookup.NOT_PLUGINS:
                    raise InputError(f"--plugins {path}: {name} is the wrapper's own (plugin loader or base "
                                     f"class), not a plugin, and cannot be replaced: rename or remove it")
                log.warning("--plugins %s replaces the shipped %s", path, name)
            found[name] = _member(path, "--plugins ")
    return found


def check_table(root: Path, files: dict[str, Member]) -> None:
    """The packed lookup table as stage two reads it, every row naming a packed plugin: a
    mistake caught here is not met by every pilot that picks that row. InputError if not."""
    lookup = _lookup(root)
    table = files["lookuptable.conf"]
    try:
        rows = lookup.read_table(str(table.path))
    except lookup.TableError as exc:  # its message starts with the path
        raise InputError(f"{table.option}{exc}") from None
    packed = sorted(name[len("plugins/"):-len(".py")] for name in files
                    if name.startswith("plugins/") and name.endswith(".py"))
    known = [name for name in packed if lookup.PLUGIN_RE.match(name) and name not in lookup.NOT_PLUGINS]
    for row in rows:
        if row.plugin not in packed:
            raise InputError(f"{table.option}{table.path}:{row.lineno}: plugin {row.plugin!r} is not among "
                             f"the packed plugins ({', '.join(known)})")


def check_sources(files: dict[str, Member]) -> None:
    """Every packed Python file compiles (with this Python: nodes may have an older one):
    a plugin with a syntax error would fail every pilot that chooses it. InputError if not."""
    for name, member in files.items():
        if name.endswith(".py"):
            try:
                compile(member.data, str(member.path), "exec", dont_inherit=True)
            except SyntaxError as exc:
                raise InputError(f"{member.option}{member.path}:{exc.lineno}: SyntaxError: {exc.msg}") from None
            except ValueError as exc:  # a NUL byte, before Python 3.12
                raise InputError(f"{member.option}{member.path}: {exc}") from None


def _tarinfo(name: str, data: Optional[bytes]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = len(data)
        info.mode = 0o755 if name == "wrapper.py" else 0o644
    return info


def _write(out_dir: str, name: str, data: bytes, mode: Optional[int] = None) -> tuple[str, str]:
    """Writes out_dir/name, with mode if given (else as the umask leaves it); returns its path
    and sha256 (hex)."""
    target = os.path.join(out_dir, name)
    partial = target + ".partial"
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(partial, "wb") as out:
            out.write(data)
        if mode is not None:
            os.chmod(partial, mode)  # whatever the umask or the installed file's mode
        os.replace(partial, target)  # never leave a half-written file under the served name
    except OSError as exc:  # a user's choice, as in demo and simulate: exit 2 naming the option
        raise InputError(f"--out: cannot write to {exc.filename or out_dir}: {exc.strerror or exc}") from None
    return target, hashlib.sha256(data).hexdigest()


def pack_stage_one(out_dir: str) -> tuple[str, str]:
    """Writes out_dir/wrapper.sh, the shipped stage one (mode 0755); returns its path and sha256 (hex)."""
    return _write(out_dir, STAGE_ONE, (wrapper_root() / "wrapper/bash/wrapper.sh").read_bytes(), 0o755)


def pack(out_dir: str, plugins: str | None = None, lookuptable: str | None = None) -> tuple[str, str]:
    """Writes out_dir/wrapper.tar.gz, with the author's plugins directory and lookup table
    if given (see members()); returns its path and sha256 (hex)."""
    root = wrapper_root()
    files = members(root, plugins, lookuptable)
    check_table(root, files)
    check_sources(files)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name in sorted(files):
                data = files[name].data
                tar.addfile(_tarinfo(name, data), None if data is None else io.BytesIO(data))
    return _write(out_dir, TARBALL, raw.getvalue())


def cmd_pack(args) -> int:
    # The tarball's two lines first, as before stage one was written too: scripts read them.
    for path, digest in (pack(args.out, args.plugins, args.lookuptable), pack_stage_one(args.out)):
        print(path)
        print(digest)
    return 0


def add_parser(subparsers) -> None:
    """Adds `wrapper pack [--out DIR] [--plugins DIR] [--lookuptable FILE]` to the CLI's subcommands."""
    wrapper = subparsers.add_parser("wrapper", help="pilot wrapper tools")
    actions = wrapper.add_subparsers(dest="wrapper_command", required=True)
    packer = actions.add_parser("pack", help="build the reproducible stage-two tarball and copy stage one beside "
                                             "it; prints the path and sha256 of each, tarball first")
    packer.add_argument("--out", default=".", help="directory for wrapper.tar.gz and wrapper.sh (default: current)")
    packer.add_argument("--plugins", metavar="DIR",
                        help="add the *.py files in DIR to the shipped plugins; one named like a shipped plugin "
                             "replaces it (not base.py or __init__.py)")
    packer.add_argument("--lookuptable", metavar="FILE", help="pack FILE instead of the shipped lookuptable.conf")
    packer.set_defaults(func=cmd_pack)
