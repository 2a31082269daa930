"""The simulation's outputs: a text table, a PNG plot and a self-contained HTML page."""
import base64
import errno
import html
import io
import os
import tempfile
from typing import List, Sequence

from provisioner.simulate.metrics import Summary

COLUMNS = ("queue", "policy", "jobs", "wait p50", "wait p95", "wait max", "prov p50", "prov p95", "prov max",
           "VM-h used", "VM-h wasted", "launches", "boot fail", "cost $", "waste/bound")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def rows(summaries: Sequence[Summary], policy: str = "") -> List[tuple]:
    out = []
    for s in summaries:
        ratio = "inf" if s.ratio == float("inf") else f"{s.ratio:.2f}"
        jobs = str(s.jobs) if s.finished == s.jobs else f"{s.finished}/{s.jobs}"
        out.append((s.name, policy, jobs, duration(s.wait_p50), duration(s.wait_p95), duration(s.wait_max),
                    duration(s.prov_p50), duration(s.prov_p95), duration(s.prov_max), f"{s.vm_hours:.1f}",
                    f"{s.wasted:.1f}", str(s.launches), str(s.boot_failures), f"{s.cost:.2f}", ratio))
    return out


def table(rows_: Sequence[tuple], columns: Sequence[str] = COLUMNS, markdown: bool = False) -> str:
    widths = [max(len(str(r[i])) for r in [columns, *rows_]) for i in range(len(columns))]
    if markdown:
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows_]
    else:
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows_]
    return "\n".join(lines)


def plot_png(runs, title: str = "") -> bytes:
    """runs: [(label, timeline)]. Idle jobs, VMs by state and cost over time, one column per run."""
    import matplotlib.pyplot as plt

    fig = figure(runs, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def figure(runs, title: str = ""):
    """The matplotlib figure ``plot_png`` renders; the caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(3, len(runs), figsize=(5.5 * len(runs), 8), sharex="col", squeeze=False)
    for col, (label, timeline) in enumerate(runs):
        hours = [s.t / 3600.0 for s in timeline]
        ax = axes[0][col]
        ax.step(hours, [s.idle_jobs for s in timeline], where="post", label="idle jobs", color="tab:red")
        ax.step(hours, [s.running_jobs for s in timeline], where="post", label="running jobs", color="tab:green")
        ax.set_title(label)
        ax.set_ylabel("jobs")
        ax.legend(loc="upper right", fontsize="small")
        ax = axes[1][col]
        ax.stackplot(hours, [s.booting for s in timeline], [s.busy_vms for s in timeline],
                     [s.idle_vms for s in timeline], [s.draining for s in timeline], step="post",
                     labels=["booting", "busy", "idle", "draining"],
                     colors=["tab:orange", "tab:blue", "tab:gray", "tab:purple"])
        ax.set_ylabel("VMs")
        ax.legend(loc="upper right", fontsize="small")
        ax = axes[2][col]
        ax.plot(hours, [s.cost for s in timeline], color="black")
        ax.set_ylabel("cost (USD)")
        ax.set_xlabel("hours")
        for ax in axes[0][col], axes[1][col]:  # jobs and VMs are counted: no 0.5 VM ticks
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def html_page(title: str, table_text: str, png: bytes, notes: Sequence[str] = ()) -> str:
    """One file, no network: the plot inlined as base64."""
    img = base64.b64encode(png).decode()
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow:auto}"
            # a comparison's plot is 5.5 inches per policy wide: fit it to the window, not beyond
            "img{max-width:100%;height:auto}"
            "</style></head><body>"
            f"<h1>{html.escape(title)}</h1><pre>{html.escape(table_text)}</pre>"
            f"<ul>{items}</ul><img alt=\"idle jobs, VMs by state and cost over time\" "
            f"src=\"data:image/png;base64,{img}\"></body></html>\n")


def paths(out_dir: str, name: str) -> List[str]:
    """The files ``write`` writes: <name>.png, <name>.html and <name>.txt."""
    return [os.path.join(out_dir, f"{name}.{ext}") for ext in ("png", "html", "txt")]


def check_writable(out_dir: str, name: str) -> None:
    """OSError unless ``write`` can write there: checked before a replay, not after it."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), out_dir)
    os.makedirs(out_dir, exist_ok=True)
    for path in paths(out_dir, name):
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{name}-", dir=out_dir)
    except OSError as exc:  # named by the directory: the probe's random name means nothing to the user
        raise OSError(exc.errno, exc.strerror, out_dir) from None
    os.close(fd)
    os.unlink(probe)


def write(out_dir: str, name: str, title: str, table_text: str, runs, notes=()) -> List[str]:
    """Writes <name>.png, <name>.html and <name>.txt; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    png = plot_png(runs, title)
    files = paths(out_dir, name)
    with open(files[0], "wb") as fh:
        fh.write(png)
    with open(files[1], "w") as fh:
        fh.write(html_page(title, table_text, png, notes))
    with open(files[2], "w") as fh:
        fh.write(table_text + "\n")
    return files
