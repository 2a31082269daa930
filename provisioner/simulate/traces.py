"""Job traces: the Standard Workload Format, ``condor_history -json`` and a simple CSV.

Every format becomes a list of ``Job`` sorted by submit time, times relative to the
first submit. A bad line is reported as ``file:line: reason`` and skipped; a trace
with no usable job is an error.
"""
import csv
import gzip
import io
import json
import math
import os
import zlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from provisioner.errors import InputError

DEFAULT_MEMORY = 2048  # MB per job when a trace does not say
# RequestCpus and RequestMemory go into job ClassAds, whose integers are 64-bit
_MAX_REQUEST = 2 ** 63 - 1


class TraceError(InputError):
    """A trace that cannot be used at all."""


@dataclass(frozen=True)
class Job:
    id: int
    submit: float  # seconds from the trace start
    runtime: float  # seconds
    cpus: int = 1
    memory: int = DEFAULT_MEMORY  # MB
    queue: Optional[str] = None  # the wmsqueue it targets; None: the first queue
    line: Optional[str] = field(default=None, compare=False)  # "file:line" it came from, for messages


def _open(path: str) -> str:
    # utf-8-sig drops a spreadsheet's BOM; a stray non-UTF-8 byte (a Latin-1 header
    # comment) spoils only its own line, not the whole trace.
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise TraceError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


def detect(path: str) -> str:
    name = path[:-3] if path.endswith(".gz") else path
    ext = os.path.splitext(name)[1].lower()
    if ext == ".swf":
        return "swf"
    if ext in (".json", ".jsonl"):
        return "condor"
    if ext == ".csv":
        return "csv"
    raise TraceError(f"{path}: unknown trace format (use .swf, .json/.jsonl or .csv, optionally .gz)")


def load(path: str, fmt: Optional[str] = None) -> Tuple[List[Job], List[str]]:
    """(jobs, problems). Raises TraceError when nothing is usable."""
    fmt = fmt or detect(path)
    parser = {"swf": parse_swf, "condor": parse_condor_history, "csv": parse_csv}.get(fmt)
    if parser is None:
        raise TraceError(f"{path}: unknown trace format {fmt!r}")
    jobs, problems = parser(_open(path), path)
    if not jobs:
        detail = f" ({len(problems)} bad lines, first: {problems[0]})" if problems else ""
        raise TraceError(f"{path}: no usable job in the trace{detail}")
    return normalise(jobs), problems


def normalise(jobs: List[Job]) -> List[Job]:
    """Sorted by submit time, the first at 0, ids renumbered in that order."""
    jobs = sorted(jobs, key=lambda j: (j.submit, j.id))
    t0 = jobs[0].submit
    return [Job(i, j.submit - t0, j.runtime, j.cpus, j.memory, j.queue, j.line) for i, j in enumerate(jobs)]


# SWF 2.2 fields (1-based in the standard): 2 submit, 4 run time, 5 allocated
# processors, 7 used memory (KB per processor), 8 requested processors,
# 10 requested memory (KB per processor), 11 status (5: cancelled); -1 means unknown.
_SWF_FIELDS = 18


def parse_swf(text: str, path: str = "<swf>") -> Tuple[List[Job], List[str]]:
    jobs, problems = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        fields = line.split()
        if len(fields) != _SWF_FIELDS:
            problems.append(f"{path}:{lineno}: expected {_SWF_FIELDS} fields, got {len(fields)}")
            continue
        bad = next((x for x in fields if not _is_number(x)), None)
        if bad is not None:
            problems.append(f"{path}:{lineno}: {bad!r} is not a number")
            continue
        f = [float(x) for x in fields]
        submit, runtime = f[1], f[3]
        procs = f[4] if f[4] > 0 else f[7]
        if submit < 0:
            problems.append(f"{path}:{lineno}: submit time unknown")
            continue
        if runtime < 0:
            problems.append(f"{path}:{lineno}: run time unknown")
            continue
        if procs <= 0:
            problems.append(f"{path}:{lineno}: processor count unknown")
            continue
        if f[10] == 5 and runtime == 0:
            problems.append(f"{path}:{lineno}: cancelled before it started (status 5, run time 0)")
            continue
        per_proc_kb = f[9] if f[9] > 0 else f[6]
        # capped: two huge fields multiply to inf, which int() cannot take; _oversized refuses it
        memory = int(min(per_proc_kb * procs / 1024, 2 * _MAX_REQUEST)) if per_proc_kb > 0 \
            else DEFAULT_MEMORY * int(procs)
        reason = _oversized(int(procs), memory)
        if reason:
            problems.append(f"{path}:{lineno}: {reason}")
            continue
        jobs.append(Job(int(f[0]), submit, runtime, int(procs), max(1, memory)))
    return jobs, problems


def _oversized(cpus: int, memory: int) -> Optional[str]:
    """The reason a job's request cannot go into a job ad, or None."""
    if cpus > _MAX_REQUEST or memory > _MAX_REQUEST:
        return f"{cpus} cpus, {memory} MB: more than a ClassAd integer holds ({_MAX_REQUEST})"
    return None


def _is_number(x: str) -> bool:
    try:
        _float(x)
        return True
    except ValueError:
        return False


def _float(text: str) -> float:
    """float(), refusing nan and inf: no trace field means them, and they would break the replay."""
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return v


def parse_condor_history(text: str, path: str = "<history>") -> Tuple[List[Job], List[str]]:
    """``condor_history -json`` (one JSON array) or ``-jsonl`` (one ad per line)."""
    jobs, problems = [], []
    for lineno, ad in _json_ads(text, path, problems):
        if not isinstance(ad, dict):
            problems.append(f"{path}:{lineno}: not a job ad")
            continue
        job, reason = _history_job(ad, len(jobs))
        if job is None:
            problems.append(f"{path}:{lineno}: {reason}")
        else:
            jobs.append(job)
    return jobs, problems


def _json_ads(text, path, problems):
    """(line, ad) pairs; a JSON syntax error is reported and, in JSON lines, skipped."""
    if text.lstrip().startswith("["):
        yield from _json_arrays(text, path, problems)
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except (ValueError, RecursionError) as exc:
            problems.append(f"{path}:{lineno}: not valid JSON ({_json_reason(exc)})")


def _json_arrays(text, path, problems):
    """The arrays of ``condor_history -json``: one, or several when outputs were concatenated."""
    decoder = json.JSONDecoder()
    pos, lineno, counted, in_array = 0, 1, 0, False
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            return
        # counted from the last ad on, not from the start: linear in the file's size
        lineno += text.count("\n", counted, pos)
        counted = pos
        if not in_array:
            if text[pos] != "[":
                problems.append(f"{path}:{lineno}: not valid JSON (expected '[' after the array);"
                                " the rest of the file is ignored")
                return
            pos, in_array = pos + 1, True
            continue
        if text[pos] == "]":
            pos, in_array = pos + 1, False
            continue
        try:
            ad, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            at = lineno + text.count(chr(10), counted, getattr(exc, "pos", pos))
            problems.append(f"{path}:{at}: not valid JSON ({_json_reason(exc)}); the rest of the file is ignored")
            return
        yield lineno, ad


def _json_reason(exc: Exception) -> str:
    """The JSON error, or which of Python's limits a valid document went past."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deep"
    return "a number with too many digits"  # int() refuses over 4300 digits


def _num(ad, key):
    v = ad.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) \
        and (isinstance(v, int) or math.isfinite(v)) else None


# scheduler (DAGMan), grid and local universe jobs never take a slot of the pool
_NO_SLOT_UNIVERSES = {7: "scheduler", 9: "grid", 12: "local"}


def _history_job(ad, index):
    qdate = _num(ad, "QDate")
    if qdate is None:
        return None, "no QDate"
    universe = _NO_SLOT_UNIVERSES.get(_num(ad, "JobUniverse"))
    if universe:
        return None, f"{universe} universe job: takes no slot of the pool"
    # the last run: an evicted job restarts from scratch, and the time between its runs was a wait
    start = _num(ad, "JobCurrentStartDate") or _num(ad, "JobStartDate")
    end = _num(ad, "CompletionDate")
    if start and end and end >= start:
        runtime = end - start
    else:
        runtime = _num(ad, "RemoteWallClockTime")
    if runtime is None or runtime < 0:
        return None, "no run time (CompletionDate - JobStartDate or RemoteWallClockTime)"
    if not start and not runtime:
        return None, "never started (removed while idle or held)"
    cpus = max(1, int(_num(ad, "RequestCpus") or 1))
    memory = max(1, int(_num(ad, "RequestMemory") or DEFAULT_MEMORY))  # an expression string falls back too
    reason = _oversized(cpus, memory)
    if reason:
        return None, reason
    cid, pid = _num(ad, "ClusterId"), _num(ad, "ProcId")
    # in integers: a huge float ClusterId times 100000 would overflow to inf
    jid = int(cid) * 100000 + int(pid or 0) if cid is not None else index
    return Job(jid, float(qdate), float(runtime), cpus, memory), None


_CSV_COLUMNS = {"submit": ("submit", "submit_time", "qdate"), "runtime": ("runtime", "run_time", "duration"),
                "cpus": ("cpus", "requestcpus", "processors"), "memory": ("memory", "requestmemory", "memory_mb"),
                "queue": ("queue", "wmsqueue")}


def parse_csv(text: str, path: str = "<csv>") -> Tuple[List[Job], List[str]]:
    """A header line naming at least submit and runtime (seconds); cpus, memory (MB), queue optional."""
    reader = csv.reader(io.StringIO(text))
    rows = _rows(reader)
    header, bad = next(rows, (None, None))
    if bad:
        return [], [f"{path}:1: {bad}"]
    if header is None:
        return [], []
    names = [h.strip().lower() for h in header]
    col = {}
    for key, aliases in _CSV_COLUMNS.items():
        col[key] = next((names.index(a) for a in aliases if a in names), None)
    if col["submit"] is None or col["runtime"] is None:
        return [], [f"{path}:1: header must name submit and runtime columns, got {','.join(header)!r}"]
    jobs, problems = [], []
    start = reader.line_num + 1  # a quoted field may span lines: a row's line is where it starts
    for row, bad in rows:
        lineno, start = start, reader.line_num + 1
        if bad:
            problems.append(f"{path}:{lineno}: {bad}")
            continue
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) < len(names):
            problems.append(f"{path}:{lineno}: expected {len(names)} columns, got {len(row)}")
            continue
        try:
            submit = _csv_number(row, col, "submit")
            runtime = _csv_number(row, col, "runtime")
            cpus = _csv_number(row, col, "cpus", 1, whole=True)
            memory = int(_csv_number(row, col, "memory", DEFAULT_MEMORY))
        except ValueError as exc:
            problems.append(f"{path}:{lineno}: {exc}")
            continue
        if submit < 0 or runtime < 0 or cpus < 1 or memory < 1:
            problems.append(f"{path}:{lineno}: negative time or non-positive cpus/memory")
            continue
        reason = _oversized(cpus, memory)
        if reason:
            problems.append(f"{path}:{lineno}: {reason}")
            continue
        queue = row[col["queue"]].strip() or None if col["queue"] is not None else None
        jobs.append(Job(len(jobs), submit, runtime, cpus, memory, queue, f"{path}:{lineno}"))
    return jobs, problems


def _csv_number(row, col, key, default=None, whole=False):
    """The row's number in column ``key``; an optional column's blank cell (a spreadsheet's
    missing value) or no such column is ``default``. With ``whole``, an int, "4.0" included:
    pandas writes an integer column with a missing value as floats."""
    text = row[col[key]].strip() if col[key] is not None else ""
    if not text and default is not None:
        return default
    if whole:
        try:
            return int(text)  # exact, however many digits
        except ValueError:
            pass
    try:
        value = _float(text)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None
    if whole:
        if value != int(value):
            raise ValueError(f"{key}: {text} is not a whole number")
        return int(value)
    return value


def _rows(reader):
    """(row, None), or (None, why) for a row the csv module refuses (a field over its size
    limit): that row is bad, the reader goes on with the next."""
    while True:
        try:
            yield next(reader), None
        except StopIteration:
            return
        except csv.Error as exc:
            yield None, str(exc)
