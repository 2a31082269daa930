from provisioner.cloud.lifecycle import Guard, GuardSettings


def test_failures_of_vms_launched_before_a_trip_do_not_trip_it_again():
    guard = Guard(GuardSettings(failures=2, window=3600, backoff=900))
    for t in (100, 110):
        guard.record(t, "boot failures", launched=0)
    assert guard.check(120)[0] == 120 + 900
    guard.record(130, "boot failures", launched=50)  # same batch, failed a cycle later
    guard.record(140, "boot failures", launched=60)
    assert guard.check(150)[0] == 120 + 900
    guard.record(2000, "boot failures", launched=1100)  # launched after the pause: counts
    guard.record(2010, "boot failures", launched=1100)
    until, reason = guard.check(2020)
    assert until == 2020 + 1800 and "trip 2" in reason


def _vm(iid, launched):
    from provisioner.cloud.lifecycle import Instance

    return Instance(iid, "Q", "fac-ab12cd-1", "m5.2xlarge", "running", launched)


def _ad(started):
    return [{"State": "Unclaimed", "Activity": "Idle", "DaemonStartTime": started}]


def test_vms_seen_first_after_a_restart_are_dated_by_their_startd_not_the_restart():
    from provisioner.cloud.lifecycle import Tracker

    tracker = Tracker(GuardSettings(failures=2, early_death=300))  # a restarted factory: it knows no VM
    vms = [_vm(f"i-{n}", launched=0) for n in range(3)]
    tracker.update(10_000, vms, {v.id: _ad(200) for v in vms}, 900)  # joined long before the restart
    tracker.update(10_060, [], {}, 900)  # all three end (idle power-off) a minute after the restart
    assert tracker.guard.events == [] and tracker.guard.check(10_060) is None


def test_an_early_death_counts_by_the_vms_launch_time():
    from provisioner.cloud.lifecycle import Tracker

    tracker = Tracker(GuardSettings(failures=1, early_death=300))
    tracker.guard.tripped_at = 5_000  # the last trip: VMs launched before it are its cause
    old, new = _vm("i-old", launched=4_900), _vm("i-new", launched=5_100)
    tracker.update(5_200, [old, new], {"i-old": _ad(5_190), "i-new": _ad(5_190)}, 900)
    tracker.update(5_300, [new], {}, 900)  # i-old ends, i-new's startd vanishes: both 110 s after joining
    assert tracker.guard.events == [(5_300, "early deaths")]  # i-new's; i-old was launched before the trip
