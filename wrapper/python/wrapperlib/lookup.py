"""The lookup table: which plugin and pilot type a site/queue/grid/project runs.

Columns: SITE QUEUE GRID PROJECT PLUGIN PILOTTYPE; `#` starts a comment; `*`
in the first four columns matches anything; GRID and PROJECT ignore case,
SITE and QUEUE do not (PanDA's names are case-sensitive). The row with the
most non-wildcard matching columns wins; among equals the first in the file.
PILOTTYPE is TYPE[:WEIGHT][,TYPE[:WEIGHT]...] (no weight means 1), or `-`
for none.
"""
import bisect
import itertools
import re

TYPE_RE = re.compile(r"[A-Za-z0-9_.+-]+\Z")
PLUGIN_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
# What the options allow (checked by both stages): a row's SITE, QUEUE and
# PROJECT must be such a name, and its GRID such a flavour, or it never matches.
NAME_RE = re.compile(r"[A-Za-z0-9_.@+:/-]+\Z")
GRIDS = ("osg", "egee", "glite", "local", "cloud")
# Modules in plugins/ that are no plugin: base.py holds the plugins' base class.
NOT_PLUGINS = ("base",)
# Columns compared without case: GRID (flavours) and PROJECT (VOs, e.g. ATLAS and atlas).
ANY_CASE = (2, 3)
COLUMNS = "SITE QUEUE GRID PROJECT PLUGIN PILOTTYPE"


class TableError(Exception):
    pass


class Row:
    def __init__(self, lineno, keys, plugin, pilottypes):
        self.lineno = lineno
        self.keys = keys  # site, queue, grid, project
        self.plugin = plugin
        self.pilottypes = pilottypes

    def score(self, wanted):
        """Number of non-wildcard columns matching wanted, or -1 on a mismatch."""
        score = 0
        for column, (have, want) in enumerate(zip(self.keys, wanted)):
            if have == "*":
                continue
            if want is None:
                return -1
            if column in ANY_CASE:
                have, want = have.lower(), want.lower()
            if have != want:
                return -1
            score += 1
        return score


def parse_pilottypes(spec):
    """[(type, weight), ...] from TYPE[:WEIGHT],...; [] for `-`."""
    if spec == "-":
        return []
    items = []
    for part in spec.split(","):
        name, sep, weight = part.partition(":")
        if not TYPE_RE.match(name) or name == "-":
            raise ValueError("invalid pilot type %r" % part)
        if sep and not (weight.isascii() and weight.isdigit()):
            raise ValueError("invalid weight in %r" % part)
        items.append((name, int(weight) if sep else 1))
    if sum(weight for _, weight in items) == 0:
        raise ValueError("weights of %r add up to zero" % spec)
    return items


def read_table(path):
    try:
        with open(path, "rb") as table:
            data = table.read()
    except OSError as exc:
        raise TableError("cannot read lookup table %s: %s" % (path, exc.strerror)) from None
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as some editors write
        data = data[3:]
    rows = []
    seen = {}  # (site, queue, grid, project): line
    for lineno, raw in enumerate(data.splitlines(), 1):
        where = "%s:%d" % (path, lineno)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TableError("%s: not UTF-8 text" % where) from None
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 6:
            raise TableError("%s: expected 6 columns (%s), found %d" % (where, COLUMNS, len(fields)))
        for name, field in zip(COLUMNS.split()[:4], fields):
            if field == "*":
                continue
            if name == "GRID":
                if field.lower() not in GRIDS:
                    raise TableError("%s: GRID %r is not a grid flavour (OSG, EGEE, gLite, local or cloud)" % (
                        where, field))
            elif not NAME_RE.match(field):  # a typo, or a partial wildcard such as ANALY_*
                raise TableError("%s: %s %r never matches: `*` stands only for a whole column, and names "
                                 "are letters, digits and _ . @ + : / -" % (where, name, field))
        if not PLUGIN_RE.match(fields[4]):
            raise TableError("%s: invalid plugin name %r" % (where, fields[4]))
        if fields[4] in NOT_PLUGINS:
            raise TableError("%s: %r is not a plugin (plugins/%s.py holds their base class)" % (
                where, fields[4], fields[4]))
        try:
            pilottypes = parse_pilottypes(fields[5])
        except ValueError as exc:
            raise TableError("%s: %s" % (where, exc)) from None
        key = tuple(field.lower() if column in ANY_CASE else field for column, field in enumerate(fields[:4]))
        if key in seen:  # the later row could never be chosen
            raise TableError("%s: same SITE QUEUE GRID PROJECT as line %d" % (where, seen[key]))
        seen[key] = lineno
        rows.append(Row(lineno, tuple(fields[:4]), fields[4], pilottypes))
    return rows


def best_row(rows, site, queue, grid, project):
    """The most specific matching row (first of equals), or None."""
    best, best_score = None, -1
    for row in rows:
        score = row.score((site, queue, grid, project))
        if score > best_score:
            best, best_score = row, score
    return best


class Picker:
    """Weighted random choice; the random module is imported only when a choice exists."""

    def __init__(self, seed=None):
        self.seed = seed
        self.rng = None

    def pick(self, items):
        """One name from [(name, weight), ...], with probability weight / total."""
        if len(items) == 1:
            return items[0][0]
        if self.rng is None:
            import random

            self.rng = random.Random(self.seed)
        totals = list(itertools.accumulate(weight for _, weight in items))
        ticket = self.rng.randrange(totals[-1])
        return items[bisect.bisect_right(totals, ticket)][0]
