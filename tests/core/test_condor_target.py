"""The HTCondor targets against the emulated pool: retire races, failures that stay one
line and lose nothing, grid_resource forms, and the emulator as strict as htcondor2."""
import os
import re
import shlex
import stat
import time
import warnings
from types import SimpleNamespace

import pytest

from provisioner import config as configmod
from provisioner.clock import VirtualClock
from provisioner.condor import attributes
from provisioner.condor.emulator import RUNNING, Pool
from provisioner.errors import ConfigErrors

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import htcondor2

LOCAL = """
[LOCAL]
wmsqueue = L
wmsstatus.condor.queueattribute = TargetQueue
batchsubmitplugin = CondorLocal
executable = /bin/true
"""

EC2 = """
[VM]
wmsqueue = V
wmsstatus.condor.queueattribute = TargetQueue
batchsubmitplugin = CondorEC2
executable = /usr/libexec/provisioner/wrapper.sh
batchsubmit.condorec2.wrapper_url = https://factory.example.org/wrapper.sh
batchsubmit.condorec2.ami_id = ami-1
batchsubmit.condorec2.access_key_id = /etc/provisioner/ec2.id
batchsubmit.condorec2.secret_access_key = /etc/provisioner/ec2.key
batchsubmit.condorec2.token_file = {token}
"""


def test_retire_spares_a_pilot_that_started_after_the_status_read(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(LOCAL))
    queue, schedd = factory.queues[0], pool.schedd()
    ids = queue.target.submit(3, SimpleNamespace(now=clock.now()), "l")
    pilots = queue.batch.pilots(queue.batch.source.read(clock.now()))
    assert pilots.pending == 3
    schedd.set_status([ids[2]], RUNNING)  # starts between the read and the remove
    assert sorted(queue.target.retire(3, SimpleNamespace(now=clock.now(), pilots=pilots))) == ids[:2]  # as done
    assert sorted(schedd.jobs) == [ids[2]] and schedd.jobs[ids[2]]["JobStatus"] == RUNNING


def test_the_factory_constraint_quotes_the_id():
    # config refuses such ids; the constraint must not depend on that
    odd = 'C:\\site "one" \\'
    schedd = Pool(VirtualClock(0)).schedd()
    schedd.add_jobs(2, ProvisionerFactory=odd)
    schedd.add_jobs(1, ProvisionerFactory=odd + "x")
    assert len(schedd.query(attributes.created_by(odd), ["ClusterId"])) == 2


def test_a_target_submitting_where_the_status_does_not_read_is_refused(write_conf, emulated):
    with pytest.raises(ConfigErrors, match=r"\[LOCAL\] batchsubmit.condorlocal.scheddhost: remote is not where "
                                           r"batchstatus.condor.scheddhost reads the pilots \(local\)"):
        emulated(write_conf(LOCAL + "batchsubmit.condorlocal.scheddhost = remote\n"))
    emulated(write_conf(LOCAL + "batchsubmit.condorlocal.scheddhost = remote\n"
                                "batchstatus.condor.scheddhost = remote\n"))


def test_a_factory_id_that_could_break_tags_or_constraints_is_refused(write_conf):
    with pytest.raises(ConfigErrors, match=r"\[Factory\] factoryid: letters, digits and _ \. @ \+ - only"):
        configmod.load(write_conf(LOCAL, factory_id='site "one"'))


def test_submit_failures_are_one_line_naming_the_queue_and_lose_nothing(write_conf, emulated, caplog):
    conf = write_conf(LOCAL + "batchsubmit.condorlocal.condor_attributes = universe = grid, "
                      "grid_resource = bogus x\n" + LOCAL.replace("[LOCAL]", "[OTHER]"))
    factory, pool, clock, ledger = emulated(conf)
    pool.schedd().add_jobs(1, TargetQueue="L")
    caplog.set_level("INFO", logger="provisioner")
    bad, good = factory.cycle()
    assert bad.action == "failed" and good.action == "submit"
    line, level = next((r.getMessage(), r.levelname) for r in caplog.records if r.getMessage().startswith("queue=LOCAL "))
    assert level == "WARNING" and "submit failed: submit to schedd failed: Invalid value 'bogus' for grid type Must be one of" in line
    assert "\n" not in line
    assert ledger.open_intents() == [] and sorted((a["queue"], a["state"]) for a in ledger.actions()) == [("LOCAL", "failed"), ("OTHER", "done")]


def test_condorec2_checks_user_data_at_start_up_and_survives_losing_it_later(write_conf, emulated, tmp_path):
    token = tmp_path / "pool.token"
    with pytest.raises(ConfigErrors, match=r"\[VM\] batchsubmit.condorec2.token_file: cannot read"):
        emulated(write_conf(EC2.format(token=token)))
    token.write_text("secret\n")
    factory, pool, clock, ledger = emulated(write_conf(EC2.format(token=token) + LOCAL))
    pool.schedd().add_jobs(1, TargetQueue="V")
    pool.schedd().add_jobs(1, TargetQueue="L")
    vm, local = factory.cycle()
    assert vm.action == "submit" and local.action == "submit"
    user_data = os.path.join(factory.services.log_dir, "VM.user-data")
    assert "secret" in open(user_data).read()
    assert stat.S_IMODE(os.stat(user_data).st_mode) == 0o600  # holds the pool token
    token.unlink()
    pool.schedd().add_jobs(1, TargetQueue="V")
    pool.schedd().add_jobs(1, TargetQueue="L")
    clock.advance_to(clock.now() + 60)
    vm, local = factory.cycle()  # no exception out of the cycle: the other queue still acts
    assert vm.action == "failed" and "token_file: cannot read" in vm.note and local.action == "submit"
    assert ledger.open_intents() == []


@pytest.mark.parametrize("target, given, expected", [
    ("CondorCE", "ce.example.org", "condor ce.example.org ce.example.org:9619"),
    ("CondorCE", "ce.example.org:9620", "condor ce.example.org ce.example.org:9620"),
    ("CondorCE", "condor sched.example.org coll.example.org:9619", "condor sched.example.org coll.example.org:9619"),
    ("CondorCE", "[2001:db8::1]:9620", "condor [2001:db8::1] [2001:db8::1]:9620"),
    ("CondorARC", "[2001:db8::2]", "arc https://[2001:db8::2]:443/arex"),
    ("CondorARC", "arc.example.org", "arc https://arc.example.org:443/arex"),
    ("CondorARC", "arc.example.org:8443", "arc https://arc.example.org:8443/arex"),
    ("CondorARC", "https://arc.example.org/arex", "arc https://arc.example.org/arex"),
])
def test_grid_resource_forms(write_conf, emulated, target, given, expected):
    factory, *_ = emulated(write_conf(LOCAL.replace("CondorLocal", target)
                                      + f"batchsubmit.{target.lower()}.gridresource = {given}\n"))
    assert htcondor2.Submit(factory.queues[0].target.description(0.0, "l"))["grid_resource"] == expected


def test_condorarc_reaches_the_job_ad_as_the_arc_gridmanager_reads_it(write_conf, emulated):
    factory, *_ = emulated(write_conf(LOCAL.replace("CondorLocal", "CondorARC")
                                      + "batchsubmit.condorarc.gridresource = arc.example.org\n"
                                      "batchsubmit.condorarc.resources = <QueueName>grid</QueueName>\n"
                                      "batchsubmit.condorarc.rte = ENV/PROXY\n"))
    text = factory.queues[0].target.description(0.0, "l")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import htcondor

    ad = next(iter(htcondor.Submit(text).jobs(count=1, clusterid=1)))
    assert ad["GridResource"] == "arc https://arc.example.org:443/arex"
    assert (ad["ArcResources"], ad["ArcRte"]) == ("<QueueName>grid</QueueName>", "ENV/PROXY")


def test_emulated_schedd_reads_job_specs_as_htcondor2_does(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(LOCAL))
    schedd = pool.schedd()
    ids = factory.queues[0].target.submit(2, SimpleNamespace(now=clock.now()), "l")
    with pytest.raises(ValueError):
        schedd.act(htcondor2.JobAction.Remove, [ids[0], "not-an-id"])
    with pytest.raises(TypeError):
        schedd.submit("executable = /bin/true\n", count=1)
    cluster = ids[0].split(".")[0]
    assert schedd.act(htcondor2.JobAction.Remove, cluster)["TotalSuccess"] == 2  # a cluster id
    assert schedd.jobs == {}


def test_throttle_sees_pilots_that_die_between_two_reads(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(LOCAL + "schedplugin = Ready, Throttle\n"))
    schedd = pool.schedd()
    schedd.add_jobs(10, TargetQueue="L")
    (d,) = factory.cycle()
    assert (d.action, d.count) == ("submit", 10)
    # a black hole: every pilot starts and dies within seconds, all between two reads
    schedd.set_status(d.ids, RUNNING)
    clock.advance_to(clock.now() + 3)
    schedd.finish(d.ids)
    clock.advance_to(clock.now() + 57)
    (d,) = factory.cycle()
    assert d.pilots.done == 10 and sorted(run for _, run in d.pilots.recent) == [3.0] * 10
    assert (d.n, d.steps[-1].reason) == (1, "10/10 pilots died young")
    # counted once, and gone from the queue once their leave_in_queue lapses (600 s)
    clock.advance_to(clock.now() + 60)
    (d,) = factory.cycle()
    assert len(d.pilots.recent) == 10
    clock.advance_to(clock.now() + 600)
    factory.cycle()
    assert {ad["JobStatus"] for ad in schedd.jobs.values() if ad.get("ProvisionerQueue")} == {1}  # only new ones


def test_condorec2_without_a_wrapper_to_embed_is_refused(write_conf, emulated):
    conf = write_conf(EC2.replace("batchsubmit.condorec2.wrapper_url = https://factory.example.org/wrapper.sh\n", ""))
    with pytest.raises(ConfigErrors, match=r"\[VM\] batchsubmit.condorec2.wrapper_url: not set, and executable "
                                           r"/usr/libexec/provisioner/wrapper.sh cannot be read here to embed"):
        emulated(conf)


def test_condorce_sends_remote_queue_only_when_configured(write_conf, emulated):
    # APF sent none: batchqueue is a PanDA name, and as +remote_queue the CE's router would
    # send the pilots to a batch queue of that name, which the site does not have.
    ce = LOCAL.replace("CondorLocal", "CondorCE") + "batchqueue = BNL_ATLAS_1-condor\n" \
        "batchsubmit.condorce.gridresource = ce.example.org\n"
    factory, *_ = emulated(write_conf(ce))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import htcondor

    ad = next(iter(htcondor.Submit(factory.queues[0].target.description(0.0, "l")).jobs(count=1, clusterid=1)))
    assert "remote_queue" not in ad
    factory, *_ = emulated(write_conf(ce + 'batchsubmit.condorce.condor_attributes.+remote_queue = "mcore"\n'))
    ad = next(iter(htcondor.Submit(factory.queues[0].target.description(0.0, "l")).jobs(count=1, clusterid=1)))
    assert ad["remote_queue"] == "mcore"


def test_environ_reads_htcondors_quoted_values_as_apf_passed_them(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(
        LOCAL + "batchsubmit.condorlocal.environ = SPECIAL='module load atlas' Q=it''s  X=1\n"))
    (jid,) = factory.queues[0].target.submit(1, SimpleNamespace(now=clock.now()), "l")
    env = dict(w.split("=", 1) for w in shlex.split(pool.schedd().jobs[jid]["Environment"]))
    assert (env["SPECIAL"], env["Q"], env["X"]) == ("module load atlas", "its", "1") and "load" not in env


@pytest.mark.parametrize("environ, why", [("FOO='a b", "a single quote is not closed"),
                                          ("FOO BAR=1", "'FOO' is not NAME=value")])
def test_environ_that_htcondor_would_read_otherwise_is_refused_at_start_up(write_conf, emulated, environ, why):
    with pytest.raises(ConfigErrors, match=rf"\[LOCAL\] batchsubmit.condorlocal: environ: .*{why}"):
        emulated(write_conf(LOCAL + f"batchsubmit.condorlocal.environ = {environ}\n"))


def test_condorarc_refuses_nordugrid_rsl_it_would_not_send(write_conf, emulated):
    arc = "[DEFAULT]\nnordugridrsl.jobname = 'analy_pilot'\nnordugridrsl.queue = None\n" \
        + LOCAL.replace("CondorLocal", "CondorNordugrid") \
        + "batchsubmit.condornordugrid.gridresource = arc.example.org\n"
    emulated(write_conf(arc))  # APF's [DEFAULT] placeholders load
    with pytest.raises(ConfigErrors, match=r"\[LOCAL\] nordugridrsl.queue: HTCondor's arc grid type sends no "
                                           r"nordugrid RSL: use batchsubmit.condorarc.resources = "
                                           r"<QueueName>atlas</QueueName>"):
        emulated(write_conf(arc + "nordugridrsl.queue = atlas\n"))
    with pytest.raises(ConfigErrors, match=r"nordugridrsl.addenv.rucio_account: .* use batchsubmit.condorarc.environ"):
        emulated(write_conf(arc.replace("[DEFAULT]\n", "[DEFAULT]\nnordugridrsl.addenv.RUCIO_ACCOUNT = pilot\n")))
    # set in the queue's own section only, as a migrated ARC queue may: the same advice
    with pytest.raises(ConfigErrors, match=r"\[LOCAL\] nordugridrsl.queue: HTCondor's arc grid type sends no"):
        emulated(write_conf(LOCAL.replace("CondorLocal", "CondorARC") + "nordugridrsl.queue = atlas\n"
                            "batchsubmit.condorarc.gridresource = arc.example.org\n"))


@pytest.mark.parametrize("line", ['condor_attributes = +ProvisionerQueue = "OTHER"',
                                  'condor_attributes = MY.provisionerfactory = "another-factory"',
                                  "condor_attributes.+ProvisionerLaunch = 1"])
def test_an_attribute_naming_the_pilots_identity_is_refused_at_start_up(write_conf, emulated, line):
    # Set last, it would replace the factory's own: its status would never see these pilots, and
    # Ready would submit a new batch every cycle (or another factory would count them as its own).
    with pytest.raises(ConfigErrors, match=r"\[LOCAL\] batchsubmit.condorlocal: condor_attributes: "
                                           r"\S+ is set by the factory"):
        emulated(write_conf(LOCAL + f"batchsubmit.condorlocal.{line}\n"))


def test_apf_submitargs_load_when_unset_and_say_what_to_use_when_set(write_conf, emulated):
    # APF passed them to condor_submit, which the factory does not run: a schedd named there
    # would be dropped without a word, the pilots going to the local one.
    ce = "[DEFAULT]\nbatchsubmit.condorosgce.submitargs = None\nbatchsubmit.condorlocal.submitargs = None\n" \
        + LOCAL.replace("CondorLocal", "CondorOSGCE") + "batchsubmit.condorosgce.gridresource = ce.example.org\n"
    factory, *_ = emulated(write_conf(ce))
    assert "batchsubmit.condorosgce.submitargs" in factory.config.queues[0].ignored
    with pytest.raises(ConfigErrors, match=r"\[LOCAL\] batchsubmit.condorosgce.submitargs: condor_submit is not "
                                           r"run: its -name schedd is batchstatus.condor.scheddhost, -pool "
                                           r"batchstatus.condor.collectorhost, -append's commands go in "
                                           r"batchsubmit.condorosgce.condor_attributes \(nothing is spooled"):
        emulated(write_conf(ce + "batchsubmit.condorosgce.submitargs = -remote gridgk05.racf.bnl.gov\n"))


def write_proxy(path, not_after, issuer_not_after=None):
    """A PEM x509 proxy as voms-proxy-init writes one: the proxy certificate, its key, then the
    certificate that signed it; self-signed here, which is all the factory reads."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(cn, end):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        when = datetime.datetime.fromtimestamp(end, datetime.timezone.utc)
        built = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()) \
            .serial_number(x509.random_serial_number()).not_valid_before(when - datetime.timedelta(days=30)) \
            .not_valid_after(when).sign(key, hashes.SHA256())
        return built.public_bytes(serialization.Encoding.PEM), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())

    proxy, key = cert("proxy", not_after)
    user, _ = cert("user", issuer_not_after or not_after + 86400 * 300)
    path.write_bytes(proxy + key + user)


CE_PROXY = LOCAL.replace("CondorLocal", "CondorCE") + "batchsubmit.condorce.gridresource = ce.example.org\n" \
    "batchsubmit.condorce.proxy = {proxy}\napfqueue.sleep = 360\n"


@pytest.mark.parametrize("make, why", [
    (lambda p, now: None, r"cannot be read \(No such file or directory\)"),
    (lambda p, now: p.write_text("not a proxy\n"), r"holds no readable PEM certificate"),
    (lambda p, now: write_proxy(p, now - 3600), r"expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"),
    # valid for condor_submit (over its 120 s), gone before the queue looks again
    (lambda p, now: write_proxy(p, now + 300), r"expires at .* UTC, before this queue's next cycle"),
    (lambda p, now: write_proxy(p, now + 86400, issuer_not_after=now - 60), r"expired at .* UTC"),
])
def test_a_proxy_that_cannot_carry_pilots_holds_the_queue_until_renewed(write_conf, emulated, tmp_path, make, why):
    # HTCondor-CE and ARC hold pilots whose proxy is gone: each would wait there an hour, and
    # the queue send a new batch to be held. The condor_submit checks run on the wall clock.
    now = float(int(time.time()))
    proxy = tmp_path / "x509up_u500"
    make(proxy, now)
    factory, pool, clock, ledger = emulated(write_conf(CE_PROXY.format(proxy=proxy)), start=now)
    pool.schedd().add_jobs(5, TargetQueue="L")
    (d,) = factory.cycle()
    assert d.action == "failed" and not [j for j in pool.schedd().jobs.values() if j.get("ProvisionerQueue")]
    assert d.pause and d.pause[0] == now + 360
    assert re.fullmatch(rf"x509 proxy {re.escape(str(proxy))} {why}: submissions held until it is renewed",
                        d.pause[1])
    assert d.note == f"submit failed: {d.pause[1]}" and [a["state"] for a in ledger.actions()] == ["failed"]
    write_proxy(proxy, now + 96 * 3600)  # the renewal the operator runs outside the factory
    clock.advance_to(now + 360)
    (d,) = factory.cycle()
    assert (d.action, d.count, d.pause) == ("submit", 5, None)
