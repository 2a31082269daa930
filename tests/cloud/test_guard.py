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
