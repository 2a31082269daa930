"""Stage-two options: aliases, validation, pass-through, plugin options."""
import pytest
from plugins.base import Plugin
from wrapperlib import options
from wrapperlib.errors import BAD_OPTION, WrapperError
from wrapperlib.log import redacted


def test_older_spellings_are_aliases():
    opts, rest = options.parse([
        "--pandasite=S", "--wrapperwmsqueue=W", "--pandagrid=OSG", "--pandaproject=atlas",
        "--pandaserverurl=https://server.example:25443", "--pandapilottype=p:1", "--pandaloglevel=debug",
        "--pandaplugin=panda", "--pandaspecialcmd=module load x",
        "--pandawrappertarballurl=https://mirror.example/w.tar.gz",
    ])
    assert (opts.site, opts.queue, opts.grid, opts.vo) == ("S", "W", "OSG", "atlas")
    assert (opts.serverurl, opts.pilottype, opts.loglevel, opts.plugin) == (
        "https://server.example:25443", "p:1", "debug", "panda")
    assert opts.specialcmd == "module load x" and opts.tarballurl == "https://mirror.example/w.tar.gz"
    assert rest == []


def test_defaults_and_blank_values():
    opts, _ = options.parse(["--wrapperqueue=Q", "--wrappergrid=cloud", "--wrappervo=", "--wrapperplugin="])
    assert opts.site == "Q" and opts.vo is None and opts.plugin is None
    assert (opts.loglevel, opts.monitormethod, opts.heartbeat, opts.killgrace) == ("info", "POST", 300, 20)


def test_unknown_options_are_left_for_the_payload(base_args):
    _, rest = options.parse(base_args + ["--pilot-flag=1", "-x", "positional", "--wrapperfuture=2"])
    assert rest == ["--pilot-flag=1", "-x", "positional", "--wrapperfuture=2"]


def test_no_abbreviations(base_args):
    _, rest = options.parse(base_args + ["--wrapperserver=https://x.example"])
    assert rest == ["--wrapperserver=https://x.example"]


Q, LOCAL = "--wrapperqueue=Q", "--wrappergrid=local"


@pytest.mark.parametrize("args, option", [
    ([LOCAL], "--wrapperqueue"),
    ([Q], "--wrappergrid"),
    ([Q, "--wrappergrid=mars"], "--wrappergrid"),
    ([Q, LOCAL, "--wrapperloglevel=loud"], "--wrapperloglevel"),
    ([Q, LOCAL, "--wrapperserverurl=ftp://x.example"], "--wrapperserverurl"),
    ([Q, LOCAL, "--wrappertarballurl=https://a.example/x,file:///etc/passwd"], "--wrappertarballurl"),
    ([Q, LOCAL, "--wrapperpilotcodeurl=https://a b"], "--wrapperpilotcodeurl"),
    ([Q, LOCAL, "--wrappertarballchecksum=123"], "--wrappertarballchecksum"),
    ([Q, LOCAL, "--wrapperpilottype=a:b"], "--wrapperpilottype"),
    ([Q, LOCAL, "--wrapperpilotcoderatio=1,x"], "--wrapperpilotcoderatio"),
    ([Q, LOCAL, "--wrappersite=$(id)"], "--wrappersite"),
    ([Q, LOCAL, "--wrapperplugin=../x"], "--wrapperplugin"),
    ([Q, LOCAL, "--wrappermonitormethod=GET"], "--wrappermonitormethod"),
    ([Q, LOCAL, "--wrapperkillgrace=-1"], "--wrapperkillgrace"),
    ([Q, LOCAL, "--wrapperheartbeat=soon"], "--wrapperheartbeat"),
])
def test_bad_options(args, option):
    with pytest.raises(WrapperError) as error:
        options.parse(args)
    assert error.value.code == BAD_OPTION
    assert option in error.value.message


@pytest.mark.parametrize("repeated, option", [
    (["--wrappermonitorurl=https://a.example/x", "--wrappermonitorurl=https://b.example/x"], "--wrappermonitorurl"),
    (["--wrapperheartbeat=5", "--wrapperheartbeat=6"], "--wrapperheartbeat"),
    (["--wrapperpilotchecksum=" + "a" * 64, "--wrapperpilotchecksum", "b" * 64], "--wrapperpilotchecksum"),
])
def test_a_repeated_stage_two_option_is_an_error(base_args, repeated, option):
    with pytest.raises(WrapperError) as error:
        options.parse(base_args + repeated)
    assert error.value.code == BAD_OPTION
    assert "%s: given more than once" % option in error.value.message


class Greeter(Plugin):
    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--wrappergreeting", dest="greeting")


def test_a_blank_plugin_option_is_its_default_converted_and_no_choice(base_args):
    class Typed(Plugin):
        @classmethod
        def add_arguments(cls, parser):
            parser.add_argument("--wrapperwait", dest="wait", type=int, default="30")
            parser.add_argument("--wrapperflavour", dest="flavour", choices=["a", "b"], default="a")

    opts, rest = options.parse(base_args + ["--wrapperwait=", "--wrapperflavour="])
    options.parse_plugin(Typed, opts, rest)
    assert (opts.wait, opts.flavour) == (30, "a")
    opts, rest = options.parse(base_args + ["--wrapperflavour=c"])
    with pytest.raises(WrapperError, match="invalid choice: 'c'"):
        options.parse_plugin(Typed, opts, rest)


def test_a_repeated_plugin_option_is_an_error(base_args):
    opts, rest = options.parse(base_args + ["--wrappergreeting=hi", "--wrappergreeting=ho"])
    with pytest.raises(WrapperError) as error:
        options.parse_plugin(Greeter, opts, rest)
    assert error.value.code == BAD_OPTION
    assert "--wrappergreeting: given more than once (also as --wrappergreeting)" in error.value.message


@pytest.mark.parametrize("args, logged", [
    (["--api-token=x", "--a=1"], ["--api-token=<redacted>", "--a=1"]),
    (["--AccessToken", "x", "--a=1"], ["--AccessToken", "<redacted>", "--a=1"]),
    (["--DB-PASSWORD=x", "--client-Secret", "y", "tokenless", "z"],
     ["--DB-PASSWORD=<redacted>", "--client-Secret", "<redacted>", "tokenless", "z"]),
    (["--wrapperspecialcmd=setup --password='a b' --token t --v=1"],
     ["--wrapperspecialcmd=setup --password=<redacted> --token <redacted> --v=1"]),
    (["--pandaspecialcmd", "setup --secret=s", "--a=1"], ["--pandaspecialcmd", "setup --secret=<redacted>", "--a=1"]),
    (["--wrapperspecialcmd=setup --password='open"], ["--wrapperspecialcmd=<redacted>"]),
    (["--wrappermonitorurl=https://m.example/r?token=s&x=1#top", "--mirrors=http://a/x?t=1,http://b/y?u=2"],
     ["--wrappermonitorurl=https://m.example/r?<redacted>#top",
      "--mirrors=http://a/x?<redacted>,http://b/y?<redacted>"]),
    (["--mirrors=https://u:p@a/x?t=1,http://b,http://v:q@c:80/"],
     ["--mirrors=https://<redacted>@a/x?<redacted>,http://b,http://<redacted>@c:80/"]),
])
def test_secret_option_values_are_redacted_in_both_forms(args, logged):
    assert redacted(args) == logged


def test_bad_seed_environment(base_args, monkeypatch):
    monkeypatch.setenv("WRAPPER_SEED", "x")
    with pytest.raises(WrapperError, match="WRAPPER_SEED"):
        options.parse(base_args)


def test_plugin_options_are_a_second_pass(base_args):
    from plugins.condorstartd import CondorStartd

    opts, rest = options.parse(base_args + ["--wrappercollector=cm.example:9618", "--pilot=1"])
    rest = options.parse_plugin(CondorStartd, opts, rest)
    assert opts.collector == "cm.example:9618" and opts.idletimeout == 1200
    assert rest == ["--pilot=1"]


def test_main_exits_80_with_one_error_line(stage_two, workdir, capsys):
    assert stage_two.main(["--wrapperqueue=Q", "--wrappergrid=moon"]) == BAD_OPTION
    err = capsys.readouterr().err
    assert "ERROR: --wrappergrid: unknown grid flavour 'moon'" in err
    assert "exit=80 (bad option)" in err


def test_options_starting_with_h_are_the_payloads(base_args):
    _, rest = options.parse(base_args + ["-hostname", "foo", "-host=x", "-hv", "--opt", "-h", "--help"])
    assert rest == ["-hostname", "foo", "-host=x", "-hv", "--opt", "-h", "--help"]


@pytest.mark.parametrize("arg", ["-h", "--help"])
def test_help_alone_prints_the_options(stage_two, workdir, capsys, arg):
    assert stage_two.main([arg]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: wrapper.py") and "--wrapperlookuptable" in out
    assert err == ""


def test_relative_paths_are_the_job_directorys(base_args, monkeypatch, tmp_path):
    args = [arg for arg in base_args if not arg.startswith("--wrapperlookuptable=")]
    monkeypatch.setenv("WRAPPER_JOBDIR", str(tmp_path))
    opts, _ = options.parse(args + ["--wrapperlookuptable=my.conf"])
    assert opts.lookuptable == str(tmp_path / "my.conf")
    opts, _ = options.parse(args + ["--wrapperlookuptable=/etc/my.conf"])
    assert opts.lookuptable == "/etc/my.conf"


def test_an_empty_value_still_counts_as_given(base_args):
    """An empty value means the default, but giving the option again is still an error."""
    with pytest.raises(WrapperError, match="--wrapperheartbeat: given more than once"):
        options.parse(base_args + ["--wrapperheartbeat=", "--wrapperheartbeat=5"])
