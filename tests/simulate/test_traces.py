"""Trace parsers: SWF, condor_history -json/-jsonl, CSV; bad lines reported, not fatal."""
import gzip
import json
import subprocess
import sys
import time

import pytest

from provisioner.simulate import traces
from provisioner.simulate.traces import DEFAULT_MEMORY, Job, TraceError

# The header and five job lines of the Parallel Workloads Archive's
# NASA-iPSC-1993-3.1-cln.swf (jobs 57, 59, 60 from the middle: submit times are
# not 0, and memory is unknown, -1, as in the whole file).
NASA = """\
; Version: 2.2
; Computer: Intel iPSC/860
; Installation: NASA Ames Research Center
;
; UnixStartTime: 749458803
; MaxNodes: 128
; Note: There is no information on wait times - the given submit
;       times are actually start times
;
   57    25574     -1     10    1     -1    -1   -1     -1    -1 -1   4   1   2 -1 -1 -1 -1
   59    26613     -1    716   32     -1    -1   -1     -1    -1 -1   4   1   3 -1 -1 -1 -1
   60    27331     -1      7    1     -1    -1   -1     -1    -1 -1   4   1   4 -1 -1 -1 -1
  304    52889     -1      6   64     -1    -1   -1     -1    -1 -1  12   2  14 -1 -1 -1 -1
  658   168848     -1      0  128     -1    -1   -1     -1    -1 -1   1   1  -1 -1 -1 -1 -1
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return str(path)


# -- SWF ---------------------------------------------------------------------

def test_swf_real_lines_map_fields_and_skip_the_header():
    jobs, problems = traces.parse_swf(NASA, "nasa.swf")
    assert problems == []
    assert [(j.id, j.submit, j.runtime, j.cpus) for j in jobs] == [
        (57, 25574, 10, 1), (59, 26613, 716, 32), (60, 27331, 7, 1), (304, 52889, 6, 64), (658, 168848, 0, 128)]
    # memory unknown (-1 in fields 7 and 10): the default per processor
    assert [j.memory for j in jobs] == [DEFAULT_MEMORY * j.cpus for j in jobs]


def test_swf_memory_is_kb_per_processor_requested_preferred_over_used():
    used_only = "1 10 -1 100 4 -1 1048576 -1 -1 -1 1 1 1 1 1 -1 -1 -1"  # 1 GiB used per processor
    requested = "2 20 -1 100 4 -1 1048576 4 -1 524288 1 1 1 1 1 -1 -1 -1"  # 512 MiB asked per processor
    by_requested = "3 30 -1 100 -1 -1 -1 2 -1 2097152 1 1 1 1 1 -1 -1 -1"  # allocated unknown: requested procs
    jobs, problems = traces.parse_swf("\n".join([used_only, requested, by_requested]))
    assert problems == []
    assert [(j.cpus, j.memory) for j in jobs] == [(4, 4096), (4, 2048), (2, 4096)]


def test_swf_bad_lines_are_reported_with_their_line_numbers_and_skipped():
    text = "\n".join([
        "; comment",                                                      # 1
        "1 0 -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",                 # 2 good
        "2 5 -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1",                    # 3 17 fields
        "",                                                               # 4
        "3 x7 -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",                # 5 not a number
        "4 -1 -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",                # 6 submit unknown
        "5 9 -1 -1 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",                  # 7 run time unknown
        "6 9 -1 100 -1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",                # 8 processors unknown
        "7 9 -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1 extra",          # 9 19 fields
        "8 nan -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",               # 10 not finite
        "9 9 -1 100 inf -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",               # 11 not finite
        "10 12 -1 50 2 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1",                # 12 good
    ])
    jobs, problems = traces.parse_swf(text, "t.swf")
    assert [j.id for j in jobs] == [1, 10]
    assert problems == [
        "t.swf:3: expected 18 fields, got 17",
        "t.swf:5: 'x7' is not a number",
        "t.swf:6: submit time unknown",
        "t.swf:7: run time unknown",
        "t.swf:8: processor count unknown",
        "t.swf:9: expected 18 fields, got 19",
        "t.swf:10: 'nan' is not a number",
        "t.swf:11: 'inf' is not a number",
    ]


def test_swf_cancelled_before_it_started_is_skipped_and_reported():
    text = "\n".join([
        "1 0 -1 100 4 -1 -1 4 -1 -1 1 1 1 1 1 -1 -1 -1",    # completed
        "2 5 300 0 -1 -1 -1 4 -1 -1 5 1 1 1 1 -1 -1 -1",    # cancelled while waiting: no run
        "3 9 10 50 4 -1 -1 4 -1 -1 5 1 1 1 1 -1 -1 -1",     # cancelled after running 50 s: it ran
        "4 12 -1 0 4 -1 -1 4 -1 -1 1 1 1 1 1 -1 -1 -1",     # completed in under 0.5 s
    ])
    jobs, problems = traces.parse_swf(text, "t.swf")
    assert [(j.id, j.runtime) for j in jobs] == [(1, 100), (3, 50), (4, 0)]
    assert problems == ["t.swf:2: cancelled before it started (status 5, run time 0)"]


def test_swf_non_utf8_header_byte_costs_only_its_line(tmp_path):
    # a Latin-1 installation name in the header, and one data line with a stray byte
    path = tmp_path / "kit.swf"
    path.write_bytes(b"; Installation: Universit\xe4t Karlsruhe\r\n"
                     b"1 0 -1 100 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1\r\n"
                     b"2 5 -1 10\xb5 1 -1 -1 -1 -1 -1 1 1 1 1 1 -1 -1 -1\r\n")
    jobs, problems = traces.load(str(path))
    assert [(j.submit, j.runtime) for j in jobs] == [(0.0, 100.0)]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:3: ") and "not a number" in problems[0]


def test_corrupt_gzip_is_a_trace_error(tmp_path):
    # a valid gzip header, then a deflate block of the reserved type 3: zlib.error, not OSError
    path = tmp_path / "broken.swf.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x07" + bytes(32))
    with pytest.raises(TraceError, match="cannot read"):
        traces.load(str(path))


def test_load_swf_gz_normalises_and_keeps_problems(tmp_path):
    path = write(tmp_path, "nasa.swf.gz", NASA + "oops\n")
    jobs, problems = traces.load(path)
    assert problems == [f"{path}:15: expected 18 fields, got 1"]
    assert [j.submit for j in jobs] == [0, 26613 - 25574, 27331 - 25574, 52889 - 25574, 168848 - 25574]
    assert [j.id for j in jobs] == [0, 1, 2, 3, 4]
    assert [j.runtime for j in jobs] == [10, 716, 7, 6, 0]


def test_normalise_sorts_by_submit_and_starts_at_zero():
    jobs = traces.normalise([Job(7, 500.0, 1.0), Job(3, 100.0, 2.0, cpus=4), Job(5, 100.0, 3.0, queue="B")])
    assert [(j.id, j.submit, j.runtime, j.cpus, j.queue) for j in jobs] == [
        (0, 0.0, 2.0, 4, None), (1, 0.0, 3.0, 1, "B"), (2, 400.0, 1.0, 1, None)]


@pytest.mark.parametrize("name,text", [
    ("empty.swf", ""),
    ("comments.swf", "; Version: 2.2\n;\n"),
    ("garbage.swf", "this is not\na trace\n"),
    ("empty.json", "[]"),
    ("empty.csv", ""),
    ("headeronly.csv", "submit,runtime\n"),
    ("empty.swf.gz", ""),
])
def test_nothing_usable_is_a_trace_error_naming_the_file(tmp_path, name, text):
    path = write(tmp_path, name, text)
    with pytest.raises(TraceError, match="no usable job") as exc:
        traces.load(path)
    assert str(exc.value).startswith(path + ":")


def test_garbage_trace_error_quotes_the_first_bad_line(tmp_path):
    path = write(tmp_path, "g.swf", "; header\nthis is not\na trace\n")
    with pytest.raises(TraceError) as exc:
        traces.load(path)
    assert f"2 bad lines, first: {path}:2: expected 18 fields, got 3" in str(exc.value)


@pytest.mark.parametrize("name,content,reason", [
    ("missing.swf", None, "cannot read"),
    ("notgzip.swf.gz", b"plain text, not gzip", "cannot read"),
    ("trace.txt", b"1,2\n", "unknown trace format"),
])
def test_unreadable_or_unknown_traces(tmp_path, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TraceError, match=reason):
        traces.load(str(path))


def test_format_overrides_the_extension(tmp_path):
    path = write(tmp_path, "jobs.txt", "submit,runtime\n5,10\n")
    jobs, _ = traces.load(path, "csv")
    assert [(j.submit, j.runtime) for j in jobs] == [(0.0, 10.0)]


# -- condor_history ------------------------------------------------------------

AD_FULL = {"ClusterId": 12, "ProcId": 3, "QDate": 1700000100, "JobStartDate": 1700000200,
           "CompletionDate": 1700000500, "RemoteWallClockTime": 999.0, "RequestCpus": 4, "RequestMemory": 8192}
AD_WALLCLOCK = {"ClusterId": 12, "ProcId": 4, "QDate": 1700000000, "JobStartDate": 1700000050,
                "CompletionDate": 0, "RemoteWallClockTime": 120.0}  # removed: no completion date
AD_NO_QDATE = {"ClusterId": 13, "ProcId": 0, "RemoteWallClockTime": 5.0}
AD_NO_RUNTIME = {"ClusterId": 14, "ProcId": 0, "QDate": 1700000000}
AD_EXPR_MEMORY = {"QDate": 1700000300, "RemoteWallClockTime": 60, "RequestCpus": 2,
                  "RequestMemory": "ifthenelse(MemoryUsage =!= undefined, MemoryUsage, 2048)"}


def test_condor_history_json_array_as_condor_history_prints_it():
    # condor_history -json: "[", then each ad pretty-printed over several lines
    text = "[\n" + "\n,\n".join(json.dumps(ad, indent=2) for ad in
                                 (AD_FULL, AD_NO_QDATE, AD_WALLCLOCK, AD_NO_RUNTIME, AD_EXPR_MEMORY)) + "\n]\n"
    starts = [i for i, line in enumerate(text.splitlines(), 1) if line == "{"]
    jobs, problems = traces.parse_condor_history(text, "h.json")
    assert problems == [f"h.json:{starts[1]}: no QDate",
                        f"h.json:{starts[3]}: no run time (CompletionDate - JobStartDate or RemoteWallClockTime)"]
    full, wallclock, expr = jobs
    # CompletionDate - JobStartDate wins over RemoteWallClockTime
    assert (full.id, full.submit, full.runtime, full.cpus, full.memory) == (1200003, 1700000100, 300, 4, 8192)
    assert (wallclock.runtime, wallclock.cpus, wallclock.memory) == (120.0, 1, DEFAULT_MEMORY)
    assert (expr.runtime, expr.cpus, expr.memory) == (60, 2, DEFAULT_MEMORY)


def test_condor_history_skips_jobs_that_take_no_slot_or_never_started():
    ads = [
        {"ClusterId": 20, "ProcId": 0, "QDate": 1000, "JobStartDate": 1010, "CompletionDate": 9010,
         "RemoteWallClockTime": 8000.0, "JobUniverse": 7, "JobStatus": 4},   # DAGMan: runs on the schedd
        {"ClusterId": 21, "ProcId": 0, "QDate": 1005, "JobStatus": 3, "CompletionDate": 0,
         "RemoteWallClockTime": 0.0, "JobUniverse": 5},                      # removed while idle
        {"ClusterId": 22, "ProcId": 0, "QDate": 1006, "JobStatus": 3, "CompletionDate": 0, "JobStartDate": 1100,
         "RemoteWallClockTime": 0.0, "JobUniverse": 5},                      # removed the second it started
        {"ClusterId": 23, "ProcId": 0, "QDate": 1007, "JobStartDate": 1020, "CompletionDate": 1320,
         "RemoteWallClockTime": 300.0, "JobUniverse": 5, "JobStatus": 4},
    ]
    text = "".join(json.dumps(ad) + "\n" for ad in ads)
    jobs, problems = traces.parse_condor_history(text, "h.jsonl")
    assert [(j.id, j.runtime) for j in jobs] == [(2200000, 0.0), (2300000, 300.0)]
    assert problems == ["h.jsonl:1: scheduler universe job: takes no slot of the pool",
                        "h.jsonl:2: never started (removed while idle or held)"]


def test_condor_history_run_time_is_the_last_run_of_an_evicted_job():
    # started at 100, evicted, idle for hours, restarted at 20000 and ran 3600 s to completion
    ad = {"QDate": 50, "JobStartDate": 100, "JobCurrentStartDate": 20000, "CompletionDate": 23600,
          "RemoteWallClockTime": 5400.0, "NumJobStarts": 2}
    jobs, problems = traces.parse_condor_history(json.dumps(ad) + "\n")
    assert problems == [] and jobs[0].runtime == 3600


def test_condor_history_concatenated_arrays_are_all_read():
    # `condor_history -json` run on two schedds, outputs concatenated into one file
    first = "[\n" + "\n,\n".join(json.dumps(ad, indent=2) for ad in (AD_FULL, AD_NO_QDATE)) + "\n]\n"
    second = "[\n" + json.dumps(AD_WALLCLOCK, indent=2) + "\n]\n"
    text = first + second + "trailing junk\n"
    lines = text.splitlines()
    jobs, problems = traces.parse_condor_history(text, "h.json")
    assert [j.id for j in jobs] == [1200003, 1200004]
    assert problems == [f"h.json:{lines.index('{', 2) + 1}: no QDate",
                        f"h.json:{len(lines)}: not valid JSON (expected '[' after the array);"
                        " the rest of the file is ignored"]


def test_condor_history_big_json_array_loads_in_linear_time():
    # 20,000 ads as condor_history -json prints them: 0.2 s; counting each ad's line
    # from the start of the file took 10 s
    ads = [{"ClusterId": i, "ProcId": 0, "QDate": 1700000000 + i, "RemoteWallClockTime": 60.0} for i in range(20000)]
    text = "[\n" + "\n,\n".join(json.dumps(ad, indent=2) for ad in ads) + "\n]\n"
    started = time.perf_counter()
    jobs, problems = traces.parse_condor_history(text, "h.json")
    assert len(jobs) == 20000 and problems == []
    assert time.perf_counter() - started < 3


def test_condor_history_json_syntax_error_stops_with_its_line():
    text = '[\n{"QDate": 10, "RemoteWallClockTime": 5}\n,\n{"QDate": 20, \n"RemoteWallClockTime": }\n]\n'
    jobs, problems = traces.parse_condor_history(text, "h.json")
    assert [j.submit for j in jobs] == [10]
    assert len(problems) == 1 and problems[0].startswith("h.json:5: not valid JSON")


def test_condor_history_jsonl_reports_bad_lines_and_goes_on(tmp_path):
    lines = [json.dumps(AD_FULL), "", "{not json", json.dumps(AD_NO_QDATE), "[1, 2]", json.dumps(AD_WALLCLOCK)]
    path = write(tmp_path, "h.jsonl.gz", "\n".join(lines) + "\n")
    jobs, problems = traces.load(path)
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:3", f"{path}:4", f"{path}:5"]
    assert "not valid JSON" in problems[0] and "no QDate" in problems[1] and "not a job ad" in problems[2]
    # normalised: AD_WALLCLOCK was queued 100 s before AD_FULL
    assert [(j.submit, j.runtime, j.cpus) for j in jobs] == [(0.0, 120.0, 1), (100.0, 300.0, 4)]


def test_condor_history_non_finite_numbers_are_reported():
    text = '{"QDate": 10, "RemoteWallClockTime": Infinity}\n{"QDate": NaN, "RemoteWallClockTime": 1}\n' \
           '{"QDate": 10, "RemoteWallClockTime": 1, "RequestCpus": Infinity}\n'
    jobs, problems = traces.parse_condor_history(text, "h.jsonl")
    assert [p.split(": ", 1)[0] for p in problems] == ["h.jsonl:1", "h.jsonl:2"]
    assert [j.cpus for j in jobs] == [1]


# -- CSV -----------------------------------------------------------------------

@pytest.mark.parametrize("header", ["submit,runtime,cpus,memory,queue",
                                    " Submit_Time , RUN_TIME , RequestCpus , RequestMemory , WMSQueue ",
                                    "qdate,duration,processors,memory_mb,queue"])
def test_csv_header_aliases(header):
    jobs, problems = traces.parse_csv(f"{header}\n30,600,2,4000,A\n10,60,1,1000,\n", "j.csv")
    assert problems == []
    assert [(j.submit, j.runtime, j.cpus, j.memory, j.queue) for j in jobs] == [
        (30.0, 600.0, 2, 4000, "A"), (10.0, 60.0, 1, 1000, None)]


def test_csv_columns_in_any_order_and_optional_ones_defaulted():
    jobs, _ = traces.parse_csv("runtime,user,submit\n100,alice,7\n")
    assert [(j.submit, j.runtime, j.cpus, j.memory, j.queue) for j in jobs] == [(7.0, 100.0, 1, DEFAULT_MEMORY, None)]


def test_csv_bad_rows_reported_with_line_numbers():
    text = "\n".join(["submit,runtime,cpus",   # 1
                      "0,10,1",                # 2 good
                      "# a comment",           # 3
                      "5,10",                  # 4 short
                      "abc,10,1",              # 5 not a number
                      "5,-1,1",                # 6 negative
                      "5,10,0",                # 7 no cpus
                      "5,nan,1",               # 8 not finite
                      "inf,10,1",              # 9 not finite
                      ",,",                    # 10 blank
                      "8,20,2"])               # 11 good
    jobs, problems = traces.parse_csv(text, "j.csv")
    assert [(j.submit, j.cpus) for j in jobs] == [(0.0, 1), (8.0, 2)]
    assert [p.split(": ", 1)[0] for p in problems] == ["j.csv:4", "j.csv:5", "j.csv:6", "j.csv:7", "j.csv:8",
                                                       "j.csv:9"]
    assert "expected 3 columns, got 2" in problems[0]


def test_csv_from_a_spreadsheet_with_bom_and_crlf(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_bytes("\ufeffSubmit,Runtime,Cpus,Note\r\n10,600,2,\"a, b\"\r\n\r\n0,60,1,x\r\n".encode())
    jobs, problems = traces.load(str(path))
    assert problems == []
    assert [(j.submit, j.runtime, j.cpus) for j in jobs] == [(0.0, 60.0, 1), (10.0, 600.0, 2)]


def test_csv_from_pandas_or_a_spreadsheet_with_float_counts_and_blank_cells():
    # pandas writes an integer column holding a missing value as floats ("4.0"), a
    # spreadsheet leaves the cell empty: a blank request is the default, as in the other formats
    text = "submit,runtime,cpus,memory\n0,100,4.0,2000\n10,100,,\n20,100,2,4096.0\n" \
           "30,100,2.5,1000\n40,100,2,\"8,000\"\n"
    jobs, problems = traces.parse_csv(text, "j.csv")
    assert [(j.submit, j.cpus, j.memory) for j in jobs] == [(0.0, 4, 2000), (10.0, 1, DEFAULT_MEMORY), (20.0, 2, 4096)]
    assert problems == ["j.csv:5: cpus: 2.5 is not a whole number",
                        "j.csv:6: memory: could not convert string to float: '8,000'"]


def test_csv_line_numbers_count_quoted_line_breaks():
    text = 'submit,runtime,note\n0,10,"two\nlines"\n\nx,20,y\n5,-1,z\n'
    jobs, problems = traces.parse_csv(text, "j.csv")
    assert [j.runtime for j in jobs] == [10.0]
    assert [p.split(": ", 1)[0] for p in problems] == ["j.csv:5", "j.csv:6"]


def test_csv_header_without_times_is_reported():
    jobs, problems = traces.parse_csv("when,how_long\n1,2\n", "j.csv")
    assert jobs == [] and problems == ["j.csv:1: header must name submit and runtime columns, got 'when,how_long'"]


# -- the command line --------------------------------------------------------------

CONF = """[Factory]
factoryId = sim
queueConf = queues.conf
baseLogDir = logs
"""
QUEUES = "[PILOT]\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready\n"


@pytest.mark.parametrize("text", ["", "; only a header\n", "\x00\x01 garbage\nmore garbage\n"])
def test_cli_unusable_trace_exits_nonzero_with_one_line_naming_it(tmp_path, text):
    (tmp_path / "queues.conf").write_text(QUEUES)
    (tmp_path / "factory.conf").write_text(CONF)
    trace = write(tmp_path, "bad.swf", text)
    r = subprocess.run([sys.executable, "-m", "provisioner", "simulate", "--conf", str(tmp_path / "factory.conf"),
                        "--trace", trace, "--quiet", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {trace}:") and "no usable job" in err[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_a_trace_job_for_no_queue_is_an_input_error_at_its_line(tmp_path):
    (tmp_path / "queues.conf").write_text(QUEUES)
    (tmp_path / "factory.conf").write_text(CONF)
    # sorted by submit time the bad row comes first; the message names its line, 4
    trace = write(tmp_path, "jobs.csv", "submit,runtime,queue\n100,60,PILOT\n50,60,PILOT\n10,60,NOPE\n")
    r = subprocess.run([sys.executable, "-m", "provisioner", "simulate", "--conf", str(tmp_path / "factory.conf"),
                        "--trace", trace, "--quiet", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: {trace}:4: queue 'NOPE': no enabled queue serves it (by section name or wmsqueue)"], r.stderr


# -- requests a job ad cannot hold -----------------------------------------------------

# (format, text whose last line asks for more cpus or memory than a 64-bit ClassAd integer)
OVERSIZED = [
    ("swf", "1 0 -1 60 1 -1 -1 1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n2 0 -1 60 1e20 -1 -1 1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n"),
    ("condor", '{"QDate": 0, "RemoteWallClockTime": 60, "ClusterId": 1e305}\n'
               '{"QDate": 0, "RemoteWallClockTime": 60, "RequestMemory": 1e20}\n'),
    ("csv", "submit,runtime,cpus,memory\n0,60,1,2000\n0,60,99999999999999999999,2000\n"),
]


@pytest.mark.parametrize("fmt,text", OVERSIZED, ids=[f for f, _ in OVERSIZED])
def test_a_request_beyond_a_classad_integer_is_a_bad_line(tmp_path, fmt, text):
    # it used to reach the emulated schedd and end the replay in a SystemError traceback
    jobs, problems = traces.load(write(tmp_path, "t.txt", text), fmt)
    assert len(jobs) == 1 and len(problems) == 1
    last = text.count("\n")
    assert problems[0].startswith(f"{tmp_path / 't.txt'}:{last}: ") and "more than a ClassAd integer" in problems[0]


# (format, text whose last line Python's parsers cannot take: each was a traceback)
UNREADABLE = [
    ("csv", "submit,runtime\n0,60\n0," + "9" * 200_000 + "\n", "field larger than field limit"),
    ("swf", "1 0 -1 60 1 -1 -1 1 -1 -1 1 1 1 -1 -1 -1 -1 -1\n2 0 -1 60 1e300 -1 -1 1 -1 1e300 1 1 1 -1 -1 -1 -1 -1\n",
     "more than a ClassAd integer"),  # memory: procs x KB per proc is inf
    ("condor", '{"QDate": 0, "RemoteWallClockTime": 60}\n{"RequestCpus": ' + "9" * 5000 + "}\n",
     "not valid JSON (a number with too many digits)"),
    ("condor", '[{"QDate": 0, "RemoteWallClockTime": 60},\n{"RequestCpus": ' + "9" * 5000 + "}]\n",
     "not valid JSON (a number with too many digits)"),
    ("condor", '{"QDate": 0, "RemoteWallClockTime": 60}\n' + "[" * 100_000 + "\n", "not valid JSON (nested too deep)"),
    ("condor", '[{"QDate": 0, "RemoteWallClockTime": 60},\n' + "[" * 100_000 + "\n",
     "not valid JSON (nested too deep)"),
]


@pytest.mark.parametrize("fmt,text,reason", UNREADABLE, ids=[f"{f}-{r.split('(')[-1][:20]}" for f, _, r in UNREADABLE])
def test_a_line_pythons_parsers_refuse_is_a_bad_line(tmp_path, fmt, text, reason):
    jobs, problems = traces.load(write(tmp_path, "t.txt", text), fmt)
    assert len(jobs) == 1 and len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 't.txt'}:{text.count(chr(10))}: ") and reason in problems[0]


def test_a_csv_header_with_a_quoted_line_break_is_reported_on_one_line():
    _, problems = traces.parse_csv('"sub\nmit",runtime\n1,10\n', "j.csv")
    assert problems == ["j.csv:1: header must name submit and runtime columns, got 'sub\\nmit,runtime'"]


def test_cli_replays_a_trace_with_an_oversized_request(tmp_path):
    (tmp_path / "queues.conf").write_text(QUEUES)
    (tmp_path / "factory.conf").write_text(CONF)
    trace = write(tmp_path, "jobs.csv", OVERSIZED[2][1])
    r = subprocess.run([sys.executable, "-m", "provisioner", "simulate", "--conf", str(tmp_path / "factory.conf"),
                        "--trace", trace, "--quiet", "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"warning: {trace}:3: 99999999999999999999 cpus, 2000 MB: "
                                     "more than a ClassAd integer holds (9223372036854775807)"]
