"""Configuration: APF names load, every error class is one line naming file, section, option."""
import os

import pytest

from provisioner import config as configmod
from provisioner.cli import main
from provisioner.errors import ConfigErrors

CE_QUEUE = """
[DEFAULT]
grid = OSG
vo = ATLAS
periodic_hold = (JobStatus == 1 && time() - QDate > 3600)
executable.defaultarguments = --wrappergrid=%(grid)s --wrappervo=%(vo)s
batchsubmit.condorcream.proxy = atlas-production

[BNL]
wmsqueue = BNL_PROD
batchsubmitplugin = CondorCE
batchsubmit.condorce.gridresource = gk.example.org
batchsubmit.condorce.condor_attributes = periodic_hold = %(periodic_hold)s
schedplugin = Ready, MaxPerCycle
sched.maxpercycle.maximum = 10
executable = /usr/libexec/wrapper.sh
executable.arguments = %(executable.defaultarguments)s --wrapperloglevel=debug
"""


def errors_of(path):
    with pytest.raises(ConfigErrors) as info:
        configmod.load(path)
    return [str(e) for e in info.value.errors]


def test_apf_file_loads_with_helper_keys_ignored(write_conf):
    cfg = configmod.load(write_conf(CE_QUEUE))
    (q,) = cfg.queues
    assert q.wmsqueue == "BNL_PROD" and q.batchqueue == "BNL"
    assert [s.name for s in q.sched] == ["ready", "maxpercycle"]
    assert q.option("sched.maxpercycle.maximum") == 10
    assert q.arguments == "--wrappergrid=OSG --wrappervo=ATLAS --wrapperloglevel=debug"
    assert q.batchsubmit.opts["condor_attributes"] == [
        "periodic_hold = (JobStatus == 1 && time() - QDate > 3600)"]
    assert {"grid", "vo", "periodic_hold", "batchsubmit.condorcream.proxy"} <= set(q.ignored)
    assert q.interval == 60


def test_unknown_option_of_a_used_plugin_is_an_error_with_did_you_mean(write_conf):
    errs = errors_of(write_conf(CE_QUEUE.replace("sched.maxpercycle.maximum", "sched.maxpercycle.maximun")))
    assert len(errs) == 1
    assert "queues.conf: [BNL] sched.maxpercycle.maximun: not an option of maxpercycle" in errs[0]
    assert "did you mean 'sched.maxpercycle.maximum'" in errs[0]


def test_unknown_top_level_option(write_conf):
    errs = errors_of(write_conf(CE_QUEUE + "batchsubmitplugn = CondorCE\n"))
    assert errs == [f"{errs[0].split(':')[0]}: [BNL] batchsubmitplugn: unknown option"
                    " (did you mean 'batchsubmitplugin'?)"]


def test_bad_type_and_bound(write_conf):
    errs = errors_of(write_conf(CE_QUEUE.replace("maximum = 10", "maximum = ten")
                                + "apfqueue.sleep = 0\n"))
    assert any("[BNL] sched.maxpercycle.maximum: expected an integer, got 'ten'" in e for e in errs)
    assert any("[BNL] apfqueue.sleep: must be at least 1" in e for e in errs)


def test_missing_required_values(write_conf):
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorCE\n[R]\nenabled = True\n"))
    assert any("[Q] batchsubmit.condorce.gridresource: a value is required" in e for e in errs)
    assert any("[R] batchsubmitplugin: a value is required" in e for e in errs)


def test_unknown_plugin_with_did_you_mean(write_conf):
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready, MaxPerCycel\n"))
    assert errs == [f"{errs[0].split(':')[0]}: [Q] schedplugin: unknown sched plugin 'MaxPerCycel'"
                    " (did you mean 'maxpercycle'?)"]


def test_bad_classad_constraint(write_conf):
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n"
                                "wmsstatus.condor.constraint = RequestCpus >\n"))
    assert len(errs) == 1 and "[Q] wmsstatus.condor.constraint: not a ClassAd expression" in errs[0]


def test_interpolation_error_names_the_option(write_conf):
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorLocal\nexecutable.arguments = %(nothere)s\n"))
    assert len(errs) == 1 and "[Q] executable.arguments:" in errs[0] and "nothere" in errs[0]


LOCAL = "batchsubmitplugin = CondorLocal"


@pytest.mark.parametrize("factory_line, queue, where, message", [
    ("logserver.address =", LOCAL, "factory.conf: [Factory] logserver.address",
     "must not be empty (leave the option out for its default, 127.0.0.1)"),
    ("baseLogDir =", LOCAL, "factory.conf: [Factory] baselogdir",
     "must not be empty (leave the option out for its default, logs)"),
    ("", LOCAL + "\nwmsstatusplugin =", "queues.conf: [Q] wmsstatusplugin",
     "must not be empty (leave the option out for its default, Condor)"),
    ("", "batchsubmitplugin =", "queues.conf: [Q] batchsubmitplugin", "a value is required"),
    ("", "batchsubmitplugin = CondorCE\nbatchsubmit.condorce.gridresource =",
     "queues.conf: [Q] batchsubmit.condorce.gridresource", "a value is required"),
])
def test_an_empty_value_is_not_taken_for_the_default_or_for_a_value(write_conf, capsys, factory_line, queue,
                                                                     where, message):
    conf = write_conf(f"[Q]\n{queue}\n")
    with open(conf) as fh:
        text = fh.read().replace("baseLogDir = logs\n", "")  # the default
    with open(conf, "w") as fh:
        fh.write(text + factory_line + "\n")
    for args in (["check-config", "--conf", conf], ["run", "--once", "--emulate", "--conf", conf]):
        assert main(args) == 2
        (err,) = capsys.readouterr().err.splitlines()
        assert err == f"error: {os.path.dirname(conf)}/{where}: {message}"


@pytest.mark.parametrize("factory_line, queue, where", [
    # accepted, then an OverflowError traceback from sqlite each cycle, queue skipped
    ("", "batchsubmitplugin = CondorLocal\nschedplugin = KeepNRunning\nsched.keepnrunning.keep_running = 1" + "0" * 30,
     "queues.conf: [Q] sched.keepnrunning.keep_running"),
    ("maxperfactory.maximum = 1" + "0" * 30, LOCAL, "factory.conf: [Factory] maxperfactory.maximum"),
], ids=["queue", "factory"])
def test_an_integer_beyond_64_bits_is_one_line_naming_the_option(write_conf, capsys, factory_line, queue, where):
    conf = write_conf(f"[Q]\n{queue}\n", factory_line + "\n")
    for args in (["check-config", "--conf", conf], ["run", "--once", "--emulate", "--conf", conf]):
        assert main(args) == 2
        (err,) = capsys.readouterr().err.splitlines()
        assert err.startswith(f"error: {os.path.dirname(conf)}/{where}: beyond a 64-bit integer"), err


@pytest.mark.parametrize("target, key, value, message", [
    # each was accepted by check-config and refused by every condor_submit or CE contact
    ("CondorCE", "port", "-1", "must be a port, 1 to 65535, got -1"),
    ("CondorCE", "port", "70000", "must be a port, 1 to 65535, got 70000"),
    ("CondorCE", "gridresource", "ce.example.org:abc", "the port of 'ce.example.org:abc' must be 1 to 65535"),
    ("CondorCE", "gridresource", "ce.example.org 9619", "expected host, host:port or 'condor <schedd> <collector>'"),
    ("CondorCE", "gridresource", "user@ce.example.org", "expected host or host:port"),
    ("CondorARC", "gridresource", "arc.example.org:0", "the port of 'arc.example.org:0' must be 1 to 65535"),
    ("CondorARC", "gridresource", "arc example", "expected host or host:port"),
])
def test_a_ce_address_that_no_submit_can_reach_is_one_line(write_conf, capsys, target, key, value, message):
    gridresource = "" if key == "gridresource" else f"batchsubmit.{target.lower()}.gridresource = ce.example.org\n"
    conf = write_conf(f"[Q]\nbatchsubmitplugin = {target}\n{gridresource}"
                      f"batchsubmit.{target.lower()}.{key} = {value}\n")
    assert main(["check-config", "--conf", conf]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(f"error: {os.path.dirname(conf)}/queues.conf: [Q] batchsubmit.{target.lower()}.{key}: "
                          + message), err


@pytest.mark.parametrize("queue, factory_line, where", [
    # an indented line continues the value before it: a path with a line break in it
    (LOCAL, "queueConf = queues.conf\n  indented = x", "{base}/queues.conf\\nindented = x: cannot read"),
    (LOCAL + "\nbatchsubmit.condorlocal.scheddhost = x\n  y", "", "{base}/queues.conf: [Q] batchsubmit.condorlocal"),
], ids=["config", "target"])
def test_a_continuation_line_in_a_value_keeps_the_error_on_one_line(write_conf, capsys, queue, factory_line, where):
    conf = write_conf(f"[Q]\n{queue}\n")
    if factory_line:
        with open(conf) as fh:
            text = fh.read()
        with open(conf, "w") as fh:
            fh.write(text.replace("queueConf = queues.conf\n", factory_line + "\n"))
    assert main(["check-config", "--conf", conf]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("error: " + where.format(base=os.path.dirname(conf))), err


def test_a_utf8_byte_order_mark_is_not_text_before_the_first_section(write_conf):
    conf = write_conf(f"[Q]\n{LOCAL}\n")
    for path in (conf, conf.replace("factory.conf", "queues.conf")):  # as a Windows editor saves them
        with open(path, "rb") as fh:
            data = fh.read()
        with open(path, "wb") as fh:
            fh.write(b"\xef\xbb\xbf" + data)
    assert [q.name for q in configmod.load(conf).queues] == ["Q"]


def test_factory_section_errors(tmp_path):
    (tmp_path / "q.conf").write_text("[Q]\nbatchsubmitplugin = CondorLocal\n")
    fac = tmp_path / "factory.conf"
    fac.write_text("[Factory]\nqueueConf = q.conf\nlogserver.prot = 5\nauthConf = auth.conf\n")
    errs = errors_of(str(fac))
    assert any("[Factory] logserver.prot: unknown option (did you mean 'logserver.port'?)" in e for e in errs)
    assert any("[Factory] factoryid: a value is required" in e for e in errs)
    assert not any("authconf" in e for e in errs)  # an APF option with no meaning here is ignored


def test_unreadable_and_malformed_files(tmp_path):
    assert errors_of(str(tmp_path / "nope.conf"))[0].endswith("nope.conf: cannot read: No such file or directory")
    bad = tmp_path / "bad.conf"
    bad.write_text("[Factory\nfactoryId = x\n")
    assert errors_of(str(bad)) == [f"{bad}:1: text before the first [section] header"]
    bad.write_text("[Factory]\nfactoryId = x\n[Factory]\n")
    assert errors_of(str(bad)) == [f"{bad}:3: section [Factory] is already defined"]
    bad.write_text("[Factory]\nfactoryId = x\nsecret-looking line without equals\n")
    assert errors_of(str(bad)) == [f"{bad}:3: not a 'key = value' line, a [section] header or a comment"]


def test_a_file_not_in_utf8_is_one_line_naming_file_and_line(write_conf, capsys):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n")
    queues = conf.replace("factory.conf", "queues.conf")
    with open(queues, "ab") as fh:
        fh.write("# maintained by Jos\xe9\n".encode("latin-1"))
    assert main(["check-config", "--conf", conf]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {queues}:5: not UTF-8 (byte 0xe9): save the file as UTF-8"]


def test_interpolation_errors_name_the_key_not_the_value_and_default_once(write_conf):
    path = write_conf("""
        [DEFAULT]
        executable.defaultarguments = --vo=%(vvo)s
        [A]
        batchsubmitplugin = CondorLocal
        batchsubmit.condorlocal.proxy = s3cr%(x)stpass
        [B]
        batchsubmitplugin = CondorLocal
        batchsubmit.condorlocal.proxy = s3cr%3tpass
        [C]
        batchsubmitplugin = CondorLocal
        batchsubmit.condorlocal.proxy = s3cr%(x)tpass
        """)
    queues = path.replace("factory.conf", "queues.conf")
    errs = errors_of(path)
    assert sorted(errs) == sorted([
        f"{queues}: [DEFAULT] executable.defaultarguments: %(vvo)s names no option of this section or [DEFAULT]",
        f"{queues}: [A] batchsubmit.condorlocal.proxy: %(x)s names no option of this section or [DEFAULT]",
        f"{queues}: [B] batchsubmit.condorlocal.proxy: '%' must be followed by '%' or '(' (write %% for a literal %)",
        f"{queues}: [C] batchsubmit.condorlocal.proxy: '%(name)' must be followed by 's' (write %% for a literal %)"])
    assert not any("s3cr" in e or "tpass" in e for e in errs)


def test_a_misspelt_plugin_in_a_key_is_an_error_not_a_silently_dropped_cap(write_conf):
    path = write_conf("""
        [DEFAULT]
        batchsubmit.condorcream.proxy = atlas
        sched.scale.factor = 2
        [A]
        schedplugin = Ready, MaxPerCycle
        sched.maxpercycel.maximum = 20
        batchsubmit.condorgt2.x = apf key of a plugin this project lacks
        batchsubmitplugin = CondorLocal
        """)
    queues = path.replace("factory.conf", "queues.conf")
    assert errors_of(path) == [f"{queues}: [A] sched.maxpercycel.maximum: no plugin of this queue is named so "
                               "(did you mean 'sched.maxpercycle.maximum'?)"]


def test_queue_dir_conf_is_read_and_a_missing_or_empty_one_named(tmp_path):
    (tmp_path / "q.conf").write_text("[Q]\nbatchsubmitplugin = CondorLocal\n")
    (tmp_path / "queues.d").mkdir()
    (tmp_path / "queues.d" / "r.conf").write_text("[R]\nbatchsubmitplugin = CondorLocal\n")
    fac = tmp_path / "factory.conf"
    fac.write_text("[Factory]\nfactoryId = f\nqueueConf = q.conf\nqueueDirConf = queues.d\n")
    assert [q.name for q in configmod.load(str(fac)).queues] == ["Q", "R"]
    fac.write_text("[Factory]\nfactoryId = f\nqueueConf = q.conf\nqueueDirConf = queues.dd\n")
    assert errors_of(str(fac)) == [f"{fac}: [Factory] queuedirconf: {tmp_path}/queues.dd is not a directory"]
    (tmp_path / "queues.d" / "r.conf").unlink()
    fac.write_text("[Factory]\nfactoryId = f\nqueueDirConf = queues.d\n")
    assert errors_of(str(fac)) == [f"{fac}: [Factory] queuedirconf: no *.conf file in {tmp_path}/queues.d"]
    fac.write_text("[Factory]\nfactoryId = f\n")
    assert errors_of(str(fac)) == [f"{fac}: [Factory] queueconf: no queue file given (queueConf or queueDirConf)"]


def test_a_misspelt_key_in_default_is_an_error_and_apfs_shipped_default_loads(write_conf):
    apf_default = """
        [DEFAULT]
        cleanlogs.keepdays = 7
        monitorsection = apfmon-lancaster
        sched.trivial.default = 0
        sched.simple.default = 0
        sched.activated.default = 0
        sched.activated.testmode.allowed = True
        batchsubmit.condorgt2.proxy = None
        batchsubmit.condorec2.peaceful = True
        globusrsl.gram2.queue = short
        periodic_hold = periodic_hold=GlobusResourceUnavailableTime =!= UNDEFINED
        grid = OSG
        vo = ATLAS
        executable.defaultarguments = --wrappergrid=%(grid)s --wrappervo=%(vo)s
        cloud = US
        status = online
        override = True
        [A]
        batchsubmitplugin = CondorLocal
        batchsubmit.condorlocal.condor_attributes = %(periodic_hold)s
        [B]
        batchsubmitplugin = CondorLocal
        """
    cfg = configmod.load(write_conf(apf_default))
    assert {"globusrsl.gram2.queue", "periodic_hold", "sched.trivial.default"} <= set(cfg.queues[1].ignored)
    # A queue of the old all-in-one step loads with APF's default for it, ignored.
    cfg = configmod.load(write_conf(apf_default + "schedplugin = Activated\n"))
    assert "sched.activated.default" in cfg.queues[1].ignored
    assert cfg.queues[1].sched[0].opts["testmode.allowed"] is True
    typos = ("enabeld = False", "apfqueue.slep = 60", "sched.maxpercycel.maximum = 5", "sched.nosuch.x = 1")
    path = write_conf(apf_default.replace("cloud = US", "\n        ".join(typos)))
    queues = path.replace("factory.conf", "queues.conf")
    assert errors_of(path) == [
        f"{queues}: [DEFAULT] enabeld: unknown option (did you mean 'enabled'?)",
        f"{queues}: [DEFAULT] apfqueue.slep: unknown option (did you mean 'apfqueue.sleep'?)",
        f"{queues}: [DEFAULT] sched.maxpercycel.maximum: no sched plugin is named 'maxpercycel'"
        " (did you mean 'sched.maxpercycle.maximum'?)",
        f"{queues}: [DEFAULT] sched.nosuch.x: no sched plugin is named 'nosuch'"]


def test_duplicate_queue_across_files(tmp_path):
    for name in ("a.conf", "b.conf"):
        (tmp_path / name).write_text("[Q]\nbatchsubmitplugin = CondorLocal\n")
    fac = tmp_path / "factory.conf"
    fac.write_text("[Factory]\nfactoryId = f\nqueueConf = a.conf, b.conf\n")
    (err,) = errors_of(str(fac))
    assert "b.conf: [Q]: queue already defined in" in err and err.endswith("a.conf")


def test_hostile_queue_name_is_refused(write_conf):
    (err,) = errors_of(write_conf('[Q"\n+Evil = 1]\nbatchsubmitplugin = CondorLocal\n'.replace("\n+", " +")))
    assert "queue names may use only" in err


def test_cli_check_config_exit_codes(write_conf, capsys):
    good = write_conf(CE_QUEUE)
    assert main(["check-config", "--conf", good]) == 0
    out = capsys.readouterr().out
    assert "chain: condor -> condor -> ready -> maxpercycle -> condorce" in out
    assert "ignored (APF helper keys or options of plugins not in use):" in out
    bad = write_conf(CE_QUEUE.replace("maximum = 10", "maximum = -1"))
    assert main(["check-config", "--conf", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad.replace('factory.conf', 'queues.conf')}: [BNL] sched.maxpercycle.maximum:"
                   " must be at least 0, got -1"]


def test_disabled_queue_is_not_built(write_conf, emulated):
    factory, *_ = emulated(write_conf("[A]\nbatchsubmitplugin = CondorLocal\n"
                                      "[B]\nenabled = False\nbatchsubmitplugin = CondorLocal\n"))
    assert [q.name for q in factory.queues] == ["A"]


def test_apf_alias_reads_its_own_namespace_and_a_repeated_step_gets_its_options(write_conf):
    cfg = configmod.load(write_conf("[Q]\nbatchsubmitplugin = CondorOSGCE\n"
                                    "batchsubmit.condorosgce.gridresource = gk.example.org\n"
                                    "schedplugin = Ready, MaxPerCycle, Scale, MaxPerCycle\n"
                                    "sched.maxpercycle.maximum = 7\nsched.scale.factor = 2\n"))
    q = cfg.queues[0]
    assert q.batchsubmit.name == "condorce" and q.batchsubmit.opts["gridresource"] == "gk.example.org"
    assert [s.opts.get("maximum") for s in q.sched if s.name == "maxpercycle"] == [7, 7]


def test_missing_required_error_is_reported_once(write_conf):
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorOSGCE\n"))
    assert len(errs) == 1 and "batchsubmit.condorce.gridresource: a value is required" in errs[0]


@pytest.mark.parametrize("queue_file", ["queues.conf", "cloud-queues.conf", "demo/queues.conf"])
def test_every_shipped_example_loads(tmp_path, queue_file):
    examples = os.path.join(os.path.dirname(configmod.__file__), "examples")
    factory = tmp_path / "factory.conf"
    factory.write_text(f"[Factory]\nfactoryId = t\nqueueConf = {os.path.join(examples, queue_file)}\n"
                       f"baseLogDir = {tmp_path}/logs\nstatedir = {tmp_path}/state\n")
    cfg = configmod.load(str(factory))
    assert cfg.queues and all(q.sched for q in cfg.queues)


def test_check_config_runs_the_targets_checks_and_reports_every_queue(write_conf, capsys):
    path = write_conf("""
        [A]
        batchstatusplugin = Cloud
        schedplugin = Elastic
        batchsubmitplugin = EC2
        batchsubmit.ec2.region = us-east-1
        batchsubmit.ec2.ami_id = ami-0123
        batchsubmit.ec2.instance_types = nosuch.type
        batchsubmit.ec2.collector = cm.example.org
        batchsubmit.ec2.wrapper_url = https://example.org/w.sh
        [B]
        batchstatusplugin = Cloud
        batchsubmitplugin = CondorLocal
        [C]
        schedplugin = VMDemand
        batchsubmitplugin = CondorLocal
        """)
    assert main(["check-config", "--conf", path]) == 2
    queues = path.replace("factory.conf", "queues.conf")
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {queues}: [A] batchsubmit.ec2.instance_types: unknown instance type 'nosuch.type': "
        "give its size as instance_type.nosuch.type = cpus=N memory=MB",
        f"error: {queues}: [B] batchstatus Cloud needs a VM target (ec2, libcloud), not condorlocal",
        f"error: {queues}: [C] sched VMDemand: batchsubmit plugin condorlocal launches no instance types"]


def test_a_bad_key_in_default_is_reported_once_against_default(write_conf):
    path = write_conf("""
        [DEFAULT]
        schedplugin = Ready, MaxPerCycle
        batchsubmitplugin = CondorLocal
        sched.maxpercycle.maximun = 20
        sched.maxpercycle.allow_negative = maybe
        [A]
        [B]
        [C]
        sched.maxpercycle.maximun = 30
        """)
    queues = path.replace("factory.conf", "queues.conf")
    hint = "not an option of maxpercycle (did you mean 'sched.maxpercycle.maximum'?)"
    errs = errors_of(path)
    assert f"{queues}: [DEFAULT] sched.maxpercycle.maximun: {hint}" in errs
    assert f"{queues}: [C] sched.maxpercycle.maximun: {hint}" in errs
    assert len(errs) == 3 and sum("[DEFAULT] sched.maxpercycle.allow_negative" in e for e in errs) == 1


def test_maxperfactory_takes_the_factory_maximum_unless_the_queue_sets_its_own(write_conf, capsys):
    path = write_conf("""
        [A]
        schedplugin = Ready, MaxPerFactory
        batchsubmitplugin = CondorLocal
        [B]
        schedplugin = Ready, MaxPerFactory
        sched.maxperfactory.maximum = 60
        batchsubmitplugin = CondorLocal
        """, factory_extra="maxperfactory.maximum = 100\n")
    cfg = configmod.load(path)
    assert [q.sched[1].opts["maximum"] for q in cfg.queues] == [100, 60]
    assert main(["check-config", "--conf", path]) == 0
    assert "sched.maxperfactory.maximum = 100" in capsys.readouterr().out


def test_queueconf_takes_apf_file_urls_and_refuses_http_ones(tmp_path, monkeypatch):
    (tmp_path / "q.conf").write_text("[Q]\nbatchsubmitplugin = CondorLocal\n")
    fac = tmp_path / "factory.conf"
    fac.write_text(f"[Factory]\nfactoryId = f\nqueueConf = file://{tmp_path}/q.conf\n")
    assert [q.name for q in configmod.load(str(fac)).queues] == ["Q"]
    monkeypatch.chdir("/")  # relative to factory.conf, as every path of [Factory]
    fac.write_text("[Factory]\nfactoryId = f\nqueueConf = file://q.conf\n")
    assert [q.path for q in configmod.load(str(fac)).queues] == [str(tmp_path / "q.conf")]
    fac.write_text("[Factory]\nfactoryId = f\nqueueConf = q.conf, http://conf.example.org/queues.conf\n")
    assert errors_of(str(fac)) == [f"{fac}: [Factory] queueconf: 'http://conf.example.org/queues.conf' is a URL: "
                                   "queue files are read from disk only (fetch it and name the file)"]


def test_options_of_apfs_shipped_factory_conf_are_ignored_but_another_config_plugin_is_an_error(write_conf):
    extra = ("factoryMinEmailRepeatSeconds = 43200\nproxymanager.enabled = True\nproxymanager.sleep = 30\n"
             "configplugin = File\n")
    cfg = configmod.load(write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n", extra))
    assert {"[Factory] factoryminemailrepeatseconds", "[Factory] proxymanager.enabled",
            "[Factory] configplugin"} <= set(cfg.ignored)
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n", "configplugin = Agis\n"))
    assert len(errs) == 1 and "[Factory] configplugin: only File is supported" in errs[0]


def test_an_alias_key_set_by_the_queue_beats_the_canonical_key_from_default(write_conf):
    cfg = configmod.load(write_conf("""
        [DEFAULT]
        batchsubmit.condorce.proxy = None
        batchsubmit.condorosgce.proxy = None
        batchsubmit.condorce.environ = A=default
        [Q]
        batchsubmitplugin = CondorOSGCE
        batchsubmit.condorosgce.gridresource = ce.example.org
        batchsubmit.condorosgce.proxy = /tmp/x509up_prod
        batchsubmit.condorce.environ = A=queue
    """))
    opts = cfg.queues[0].batchsubmit.opts
    assert opts["proxy"] == "/tmp/x509up_prod" and opts["environ"] == "A=queue"


def test_a_proxy_conf_profile_name_as_proxy_is_an_error(write_conf):
    errs = errors_of(write_conf("""
        [Q]
        batchsubmitplugin = CondorCE
        batchsubmit.condorce.gridresource = ce.example.org
        batchsubmit.condorce.proxy = atlas-production
    """))
    assert len(errs) == 1 and "[Q] batchsubmit.condorce.proxy: the x509 proxy file's absolute path" in errs[0]
    assert "proxy.conf" in errs[0]


def test_an_apf_only_plugin_gets_no_misleading_did_you_mean(write_conf):
    errs = errors_of(write_conf("[Q]\nbatchsubmitplugin = CondorGRAM\n[R]\nbatchsubmitplugin = CondorCREAM\n"))
    assert len(errs) == 2
    assert all("an AutoPyFactory plugin this factory does not have" in e and "did you mean" not in e for e in errs)
    assert "condorce" in errs[0]


def test_lowercase_none_is_none_as_in_apf(write_conf):
    cfg = configmod.load(write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n", "cycles = none\n"))
    assert cfg.cycles is None


def test_queues_cycle_as_in_apf_and_factory_sleep_is_apfs_main_loop(tmp_path):
    (tmp_path / "q.conf").write_text("[A]\nbatchsubmitplugin = CondorLocal\n"
                                     "[B]\nbatchsubmitplugin = CondorLocal\napfqueue.sleep = 60\n")
    fac = tmp_path / "factory.conf"
    fac.write_text("[Factory]\nfactoryId = f\nqueueConf = q.conf\nfactory.sleep = 30\n")  # APF's template
    cfg = configmod.load(str(fac))
    assert [q.interval for q in cfg.queues] == [360, 60]  # not every 30 s
    assert "[Factory] factory.sleep" in cfg.ignored
