"""Lookup table rules: wildcards, specificity, ties, overrides, malformed rows."""
import pytest
from wrapperlib import lookup
from wrapperlib.errors import LOOKUP, PLUGIN, WrapperError
from wrapperlib.log import Log

TABLE = """\
# SITE  QUEUE  GRID  PROJECT  PLUGIN  PILOTTYPE
*       *      *     *        trivial  -
*       *      OSG   *        generic  osgpilot        # one column
SITEA   *      OSG   *        generic  siteapilot
*       QA     OSG   *        panda    queuepilot
SITEA   QA     *     atlas    panda    atlaspilot
"""


def best(path, site, queue, grid, project=None):
    return lookup.best_row(lookup.read_table(path), site, queue, grid, project)


def test_wildcards_match_anything(table):
    row = best(table(TABLE), "X", "Y", "cloud")
    assert (row.plugin, row.pilottypes, row.lineno) == ("trivial", [], 2)


def test_most_specific_row_wins_wherever_it_is(table):
    path = table(TABLE)
    assert best(path, "X", "Y", "osg").pilottypes == [("osgpilot", 1)]  # grid is case-insensitive
    assert best(path, "SITEA", "Y", "OSG").pilottypes == [("siteapilot", 1)]
    assert best(path, "SITEA", "QA", "OSG", "atlas").pilottypes == [("atlaspilot", 1)]


def test_a_concrete_column_needs_that_option(table):
    # Without a project the atlas row cannot match: the two-column rows tie.
    assert best(table(TABLE), "SITEA", "QA", "OSG").lineno == 4


def test_ties_go_to_the_first_row(table):
    assert best(table(TABLE), "SITEA", "QA", "OSG").pilottypes == [("siteapilot", 1)]
    swapped = "*  QA  OSG  *  panda  queuepilot\nSITEA  *  OSG  *  generic  siteapilot\n"
    assert best(table(swapped), "SITEA", "QA", "OSG").pilottypes == [("queuepilot", 1)]


def test_no_match(table):
    assert best(table("SITEA * * * trivial -\n"), "SITEB", "Q", "local") is None


@pytest.mark.parametrize("line, message", [
    ("* * * * trivial", "expected 6 columns"),
    ("* * * * trivial - extra", "found 7"),
    ("* * * * Bad-Name -", "invalid plugin name"),
    ("* * * * generic a:x", "invalid weight"),
    ("* * * * generic a:0,b:0", "add up to zero"),
    ("* * * * generic a:\u00b2", "invalid weight"),  # a digit to str.isdigit(), not to int()
    ("* * * * generic other", "same SITE QUEUE GRID PROJECT as line 3"),  # never chosen
    ("* * OGS * generic p", "GRID 'OGS' is not a grid flavour"),  # never matches either
    ("* ANALY_* * * generic p", "QUEUE 'ANALY_*' never matches: `*` stands only for a whole column"),
    ("SIT\u00c9 * * * generic p", "SITE 'SIT\u00c9' never matches"),
    ("* * * at|as generic p", "PROJECT 'at|as' never matches"),
])
def test_malformed_row_names_its_line(table, line, message):
    path = table("# comment\n\n* * * * trivial -\n" + line + "\n")
    with pytest.raises(lookup.TableError) as error:
        lookup.read_table(path)
    assert "%s:4:" % path in str(error.value)
    assert message in str(error.value)


def test_project_ignores_case_site_and_queue_do_not(table):
    path = table(TABLE)
    assert best(path, "SITEA", "QA", "OSG", "ATLAS").pilottypes == [("atlaspilot", 1)]
    assert best(path, "sitea", "QA", "OSG", "atlas").pilottypes == [("queuepilot", 1)]
    assert best(path, "SITEA", "qa", "OSG", "atlas").pilottypes == [("siteapilot", 1)]


def test_rows_differing_only_in_the_projects_case_are_repeated(table):
    path = table("* * OSG atlas panda p\n* * osg ATLAS generic q\n")
    with pytest.raises(lookup.TableError, match="%s:2: same SITE QUEUE GRID PROJECT as line 1" % path):
        lookup.read_table(path)
    assert len(lookup.read_table(table("SITE * * * panda p\nsite * * * generic q\n"))) == 2


def test_a_row_naming_the_base_class_is_malformed(table):
    path = table("* * * * trivial -\n* * OSG cms base -\n")
    with pytest.raises(lookup.TableError, match="%s:2: 'base' is not a plugin" % path):
        lookup.read_table(path)


def test_an_undecodable_line_is_named(tmp_path):
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"* * * * trivial -\n# caf\xe9\n")
    with pytest.raises(lookup.TableError, match="%s:2: not UTF-8 text" % path):
        lookup.read_table(str(path))


def test_a_byte_order_mark_is_no_part_of_row_one(tmp_path):
    path = tmp_path / "bom.conf"
    path.write_bytes(b"\xef\xbb\xbfSITEA * * * generic p\r\n# caf\xc3\xa9\r\n* * * * trivial -\r\n")
    assert best(str(path), "SITEA", "Q", "local").plugin == "generic"
    assert best(str(path), "X", "Q", "local").lineno == 3


def test_unreadable_table(tmp_path):
    with pytest.raises(lookup.TableError, match="cannot read"):
        lookup.read_table(str(tmp_path / "missing.conf"))


def without_table(args):
    return [arg for arg in args if not arg.startswith("--wrapperlookuptable=")]


def choose(stage_two, args, path):
    from wrapperlib import options

    opts, _ = options.parse(without_table(args) + ["--wrapperlookuptable=" + path])
    return stage_two.choose(opts, lookup.Picker(1), Log())[:2]  # without where they came from


def test_overrides_replace_the_rows_values(stage_two, table, base_args):
    path = table("* * * * generic rowpilot\n")
    assert choose(stage_two, base_args, path) == ("generic", "rowpilot")
    assert choose(stage_two, base_args + ["--wrapperplugin=panda"], path) == ("panda", "rowpilot")
    assert choose(stage_two, base_args + ["--wrapperpilottype=mine"], path) == ("generic", "mine")


def test_both_overrides_skip_the_table(stage_two, tmp_path, base_args):
    args = base_args + ["--wrapperplugin=trivial", "--wrapperpilottype=p"]
    assert choose(stage_two, args, str(tmp_path / "absent.conf")) == ("trivial", "p")


def test_plugin_override_without_a_matching_row(stage_two, table, base_args):
    path = table("ELSEWHERE * * * generic p\n")
    assert choose(stage_two, base_args + ["--wrapperplugin=trivial"], path) == ("trivial", None)
    with pytest.raises(WrapperError) as error:
        choose(stage_two, base_args, path)
    assert error.value.code == LOOKUP and "no row" in error.value.message


def test_main_reports_a_malformed_table(stage_two, table, workdir, base_args, capsys):
    path = table("* * * * trivial\n")
    assert stage_two.main(without_table(base_args) + ["--wrapperlookuptable=" + path]) == LOOKUP
    assert "%s:1: expected 6 columns" % path in capsys.readouterr().err


def test_main_refuses_unknown_plugins(stage_two, table, workdir, base_args, capsys):
    assert stage_two.main(without_table(base_args) + ["--wrapperlookuptable=" + table("* * * * nosuch -\n")]) \
        == PLUGIN
    assert stage_two.main(base_args + ["--wrapperplugin=base", "--wrapperpilottype=x"]) == PLUGIN


def test_shipped_table_parses(repo):
    path = str(repo / "lookuptable.conf")
    assert lookup.read_table(path)
    assert best(path, "X", "Y", "OSG", "atlas").plugin == "panda"
    assert best(path, "X", "Y", "OSG", "ATLAS").plugin == "panda"  # as the shipped examples spell it
    assert best(path, "X", "Y", "cloud").plugin == "condorstartd"
