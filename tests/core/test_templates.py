"""Submit descriptions: golden files that parse with htcondor2, and hostile values that cannot inject."""
import os
import warnings

import pytest

from provisioner import config as configmod
from provisioner.errors import ConfigErrors, TemplateValueError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import classad2
    import htcondor
    import htcondor2

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")

QUEUES = """
[DEFAULT]
executable = /usr/libexec/provisioner/wrapper.sh
executable.arguments = --wrappergrid=OSG --wrapperspecialcmd="module load osg" --wrappervo=ATLAS
batchsubmit.{target}.condor_attributes = periodic_remove = JobStatus == 5, +MaxWallTime = 3600
batchsubmit.{target}.environ = SITE=BNL

[BNL_{target}]
batchsubmitplugin = {target}
{extra}
"""

TARGETS = {
    "condorlocal": "",
    "condorce": "batchsubmit.condorce.gridresource = gridgk01.racf.bnl.gov",
    "condorarc": "batchsubmit.condorarc.gridresource = arc.ndgf.org",
    "condorec2": "batchsubmit.condorec2.ami_id = ami-12c6146b\n"
                 "batchsubmit.condorec2.wrapper_url = https://factory.example.org/wrapper.sh\n"
                 "batchsubmit.condorec2.access_key_id = /etc/provisioner/ec2.id\n"
                 "batchsubmit.condorec2.secret_access_key = /etc/provisioner/ec2.key",
}


def target_for(write_conf, emulated, target, extra_queue_lines=""):
    conf = write_conf(QUEUES.format(target=target, extra=TARGETS[target] + "\n" + extra_queue_lines),
                      factory_extra="baseLogDirUrl = http://factory.example.org/logs\n")
    factory, pool, clock, _ = emulated(conf, start=1_700_000_000.0)
    factory.services.log_dir = "/var/log/provisioner"
    return factory.queues[0].target


def decode_arguments(value: str):
    """HTCondor's new argument syntax, per the condor_submit manual, to check what we encode."""
    assert value.startswith('"') and value.endswith('"')
    text, args, cur, quoted, i = value[1:-1], [], None, False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "'" and text[i + 1:i + 2] == "'":
                cur += "'"
                i += 1
            elif c == '"' and text[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            elif c == "'":
                quoted = False
            else:
                cur += c
        elif c == " ":
            if cur is not None:
                args.append(cur)
            cur = None
        elif c == "'":
            quoted, cur = True, cur or ""
        else:
            cur = (cur or "") + c
        i += 1
    if cur is not None:
        args.append(cur)
    return args


def job_ad(text):
    """The real job ad condor_submit would make (htcondor v1 Submit.jobs, no schedd needed)."""
    return classad2.parseOne(str(next(iter(htcondor.Submit(text).jobs(count=1, clusterid=1)))))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_golden_submit_descriptions_parse(write_conf, emulated, target):
    text = target_for(write_conf, emulated, target).description(1_700_000_000.0, "test-factory-1")
    path = os.path.join(GOLDEN, f"{target}.sub")
    if os.environ.get("GOLDEN_UPDATE"):
        with open(path, "w") as fh:
            fh.write(text)
    with open(path) as fh:
        assert text == fh.read()
    sub = htcondor2.Submit(text)
    assert sub["executable"] == "/usr/libexec/provisioner/wrapper.sh"
    assert decode_arguments(sub.expand("arguments")) == [
        "--wrappergrid=OSG", "--wrapperspecialcmd=module load osg", "--wrappervo=ATLAS"]
    ad = job_ad(text)
    assert ad["ProvisionerFactory"] == "test-factory" and ad["ProvisionerQueue"] == f"BNL_{target}"
    assert ad["ProvisionerLaunch"] == "test-factory-1" and ad["MaxWallTime"] == 3600
    assert "SITE=BNL" in ad["Environment"]
    # AutoPyFactory's per-pilot names, the job id expanded by condor_submit (cluster 1, proc 0)
    assert ad["FACTORY_JOBID"] == "test-factory#1.0" and ad["MATCH_APF_QUEUE"] == f"BNL_{target}"
    logs = f"http://factory.example.org/logs/2023-11-14/BNL_{target}"
    assert (ad["APF_OUTURL"], ad["APF_ERRURL"]) == (f"{logs}/1.0.out", f"{logs}/1.0.err")
    assert f"GTAG={logs}/1.0.out" in ad["Environment"] and "APFCID=1.0" in ad["Environment"]
    assert "PANDA_JSID=test-factory" in ad["Environment"]  # the PanDA pilot's scheduler id


HOSTILE = [
    'x"\n+Evil = True\nqueue 100\n',
    "$(ENV(HOME))",
    "a\rb",
    "' ; rm -rf / ; '",
    '"" && touch /tmp/x',
    "`id`",
    'C:\\pilots\\ "quoted\\" \\',
    "pid=$$ cost=$(X)5 $ENV(HOME) $RANDOM_INTEGER(1,9) a$b $ $$",
    "$$(GLIDEIN_Site)",
    "$(dollar)",
]


def _refused(value) -> bool:
    """Only line breaks, '$$(' (a match-time macro) and '$(DOLLAR)', which no escape spells."""
    return "\n" in value or "\r" in value or "$$(" in value or "$(dollar)" in value.lower()


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_arguments_stay_one_literal_argument(write_conf, emulated, value):
    target = target_for(write_conf, emulated, "condorce")
    target.queue.arguments = "--wrappervo=" + value.replace("\\", "\\\\").replace('"', '\\"').join('""')
    try:
        text = target.description(0.0, "l")
    except TemplateValueError as exc:
        assert _refused(value), exc
        return
    sub = htcondor2.Submit(text)
    assert decode_arguments(sub.expand("arguments")) == ["--wrappervo=" + value]
    ad = job_ad(text)
    assert "Evil" not in ad and ad["ProvisionerQueue"] == "BNL_condorce"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_attribute_and_environment_values(write_conf, emulated, value):
    target = target_for(write_conf, emulated, "condorlocal")
    target.opts["environ"] = "X=" + value.replace(" ", "_")
    target.services.factory_id = value
    try:
        text = target.description(0.0, "l")
    except TemplateValueError:
        assert _refused(value)
        return
    ad = job_ad(text)
    assert ad["ProvisionerFactory"] == value  # the literal string, not expanded or split
    assert ad["FACTORY_JOBID"] == value + "#1.0"  # only the job id around it is expanded
    assert "Evil" not in ad
    assert set(htcondor2.Submit(text).keys()) == set(htcondor2.Submit(
        target_for(write_conf, emulated, "condorlocal").description(0.0, "l")).keys())


def test_hostile_attribute_names_are_refused(write_conf, emulated):
    target = target_for(write_conf, emulated, "condorlocal")
    target.opts["condor_attributes"] = ["queue\n+Evil = 1"]
    with pytest.raises(TemplateValueError):
        target.description(0.0, "l")
    target.opts["condor_attributes"] = ["requirements = true\nqueue 5"]
    with pytest.raises(TemplateValueError):
        target.description(0.0, "l")
    for statement in ("queue = 5", "QUEUE = 1", "if = true", "else = 1", "endif = 1"):
        target.opts["condor_attributes"] = [statement]
        with pytest.raises(TemplateValueError, match="not a valid attribute name"):
            target.description(0.0, "l")


@pytest.mark.parametrize("value", ["/opt/pilot\\", "/opt/pilot \\ ", "/opt/a\u2028+Evil = True", "/opt/#x",
                                   "/opt/" + "x" * 100_000])
def test_hostile_bare_values_neither_swallow_nor_add_commands(write_conf, emulated, value):
    target = target_for(write_conf, emulated, "condorce")
    keys = set(htcondor2.Submit(target.description(0.0, "l")).keys())
    target.queue.executable = value
    target.opts["proxy"] = value
    try:
        text = target.description(0.0, "l")
    except TemplateValueError as exc:
        # U+2028 adds no submit command, but ends a line of the VMs' YAML user-data: refused everywhere
        assert (value.strip().endswith("\\") and "ends with a backslash" in str(exc)) or \
            ("\u2028" in value and "line break" in str(exc))
        return
    sub = htcondor2.Submit(text)
    assert set(sub.keys()) == keys | {"x509userproxy"} and sub["x509userproxy"] == value
    target.opts["proxy"] = None  # htcondor would read the file
    ad = job_ad(target.description(0.0, "l"))
    assert ad["Cmd"] == value and "Evil" not in ad


def test_multiline_config_value_is_refused_at_start_up(write_conf, emulated):
    conf = write_conf(QUEUES.format(target="condorce", extra="batchsubmit.condorce.gridresource = gk\n"
                                    "  +Evil = True"))
    with pytest.raises(ConfigErrors) as info:
        emulated(conf)
    (err,) = info.value.errors
    assert "[BNL_condorce] batchsubmit.condorce: value" in str(err) and "line break" in str(err)


def test_config_loads_hostile_values_as_data(write_conf):
    cfg = configmod.load(write_conf(QUEUES.format(target="condorce", extra=TARGETS["condorce"])))
    assert cfg.queues[0].batchsubmit.opts["condor_attributes"][1] == "+MaxWallTime = 3600"
