"""The progress bar on a terminal: log lines of the replayed factory do not land on it."""
import io
import logging

from provisioner.simulate.progress import Bar


def screen(text: str) -> list:
    """The lines a terminal shows for ``text``: a carriage return goes back to column 0, then overwrites."""
    lines = []
    for raw in text.split("\n"):
        shown = ""
        for part in raw.split("\r"):
            shown = part + shown[len(part):]
        lines.append(shown.rstrip())
    return lines


def test_a_log_line_during_the_replay_starts_on_a_clean_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with Bar("simulating elastic", stream=stream, enabled=True) as bar:
            bar.update(0.25)
            logging.getLogger("provisioner").warning("queue=CLOUD launched 1 of 4")
            bar.update(0.5)
        logging.getLogger("provisioner").warning("after the replay")
    finally:
        root.removeHandler(handler)
    # it used to read "simulating elastic [#######.......]  25.0%WARNING queue=CLOUD ..."
    # the bar redrawn below the warning was wiped at the end: the next line takes its place
    assert screen(stream.getvalue()) == ["WARNING queue=CLOUD launched 1 of 4", "WARNING after the replay", ""]
    assert handler.filters == []
