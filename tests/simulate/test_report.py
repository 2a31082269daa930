"""The report's plot and HTML page, as a site admin reads them."""
import re

from provisioner.simulate import report
from provisioner.simulate.engine import Sample

# one VM boots, runs two jobs and is terminated: matplotlib's default ticks would read 0.2, 0.4 ... VMs
ONE_VM = [Sample(0, 2, 0, 1, 0, 0, 0, 0.0), Sample(120, 0, 2, 0, 0, 1, 0, 0.01),
          Sample(3600, 0, 0, 0, 0, 0, 0, 0.35)]


def test_jobs_and_vms_are_plotted_on_whole_number_ticks():
    import matplotlib.pyplot as plt

    fig = report.figure([("elastic", ONE_VM), ("apf", ONE_VM)])
    try:
        for row in (0, 1):  # jobs, VMs; the cost row is in dollars
            for ax in fig.axes[row * 2:row * 2 + 2]:
                ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
                assert ticks and all(t == int(t) for t in ticks), (ax.get_ylabel(), ticks)
    finally:
        plt.close(fig)


def test_html_fits_a_wide_comparison_plot_to_the_window_and_needs_no_network():
    page = report.html_page("t", "table", b"\x89PNG", ["a note"])
    # seven policies make a plot 7 x 5.5 inches wide: without a max-width the last ones are off-screen
    assert re.search(r"img\{[^}]*max-width:100%", page)
    assert not re.search(r"https?://", page)
