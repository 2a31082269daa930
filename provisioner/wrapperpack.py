"""`provisioner wrapper pack`: the stage-two tarball of the pilot wrapper.

The tarball (wrapper.py, wrapperlib/, plugins/, lookuptable.conf) is
reproducible: sorted entries, fixed mtime/owner/modes and a gzip header
without time or name, so the same sources always give the same sha256, which
stage one checks (--wrappertarballchecksum).
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import tarfile
from pathlib import Path

from provisioner.errors import InputError

MTIME = 946684800  # 2000-01-01: any fixed time will do, but some tars warn about 0
TARBALL = "wrapper.tar.gz"


def wrapper_root() -> Path:
    """The source checkout holding wrapper/python and lookuptable.conf."""
    root = Path(__file__).resolve().parents[1]
    if (root / "wrapper" / "python" / "wrapper.py").is_file() and (root / "lookuptable.conf").is_file():
        return root
    raise InputError(
        f"pilot wrapper sources not found under {root} (wrapper/python/wrapper.py, lookuptable.conf): "
        "`provisioner wrapper pack` runs from a source checkout (pip install -e)")


def members(root: Path) -> list[tuple[str, Path]]:
    """(name in the tarball, source path), sorted by name; directories included."""
    stage_two = root / "wrapper" / "python"
    found = [("lookuptable.conf", root / "lookuptable.conf")]
    for path in stage_two.rglob("*"):
        relative = path.relative_to(stage_two)
        if any(part.startswith((".", "__pycache__")) for part in relative.parts):
            continue
        if path.is_dir() or path.suffix == ".py":
            found.append((relative.as_posix(), path))
    return sorted(found)


def check_table(root: Path) -> None:
    """The lookup table as stage two reads it, every row naming a plugin that is packed: a
    mistake caught here is not met by every pilot that picks that row. InputError if not."""
    spec = importlib.util.spec_from_file_location("_wrapper_lookup", root / "wrapper/python/wrapperlib/lookup.py")
    lookup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lookup)  # stage two's own reader, not a copy of its rules
    table, plugins = root / "lookuptable.conf", root / "wrapper/python/plugins"
    try:
        rows = lookup.read_table(str(table))
    except lookup.TableError as exc:
        raise InputError(str(exc)) from None
    for row in rows:
        if not (plugins / f"{row.plugin}.py").is_file():
            raise InputError(f"{table}:{row.lineno}: plugin {row.plugin!r} is not in {plugins}")


def check_sources(root: Path) -> None:
    """Every packed Python file compiles (with this Python: nodes may have an older one):
    a plugin with a syntax error would fail every pilot that chooses it. InputError if not."""
    for _, path in members(root):
        if path.suffix == ".py":
            try:
                compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
            except SyntaxError as exc:
                raise InputError(f"{path}:{exc.lineno}: SyntaxError: {exc.msg}") from None


def _tarinfo(name: str, path: Path) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if path.is_dir():
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = path.stat().st_size
        info.mode = 0o755 if name == "wrapper.py" else 0o644
    return info


def pack(out_dir: str) -> tuple[str, str]:
    """Writes out_dir/wrapper.tar.gz; returns its path and sha256 (hex)."""
    check_table(wrapper_root())
    check_sources(wrapper_root())
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, path in members(wrapper_root()):
                info = _tarinfo(name, path)
                if info.isdir():
                    tar.addfile(info)
                else:
                    with path.open("rb") as data:
                        tar.addfile(info, data)
    data = raw.getvalue()
    target = os.path.join(out_dir, TARBALL)
    partial = target + ".partial"
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(partial, "wb") as out:
            out.write(data)
        os.replace(partial, target)  # never leave a half-written tarball under the served name
    except OSError as exc:  # a user's choice, as in demo and simulate: exit 2 naming the option
        raise InputError(f"--out: cannot write to {exc.filename or out_dir}: {exc.strerror or exc}") from None
    return target, hashlib.sha256(data).hexdigest()


def cmd_pack(args) -> int:
    path, digest = pack(args.out)
    print(path)
    print(digest)
    return 0


def add_parser(subparsers) -> None:
    """Adds `wrapper pack [--out DIR]` to the CLI's subcommands."""
    wrapper = subparsers.add_parser("wrapper", help="pilot wrapper tools")
    actions = wrapper.add_subparsers(dest="wrapper_command", required=True)
    packer = actions.add_parser("pack", help="build the reproducible stage-two tarball; prints its path and sha256")
    packer.add_argument("--out", default=".", help="directory for wrapper.tar.gz (default: current)")
    packer.set_defaults(func=cmd_pack)
