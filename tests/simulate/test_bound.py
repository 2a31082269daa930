"""The clairvoyant bound: optimal among schedules in which no job waits, and not
beaten on both waste and wait by any policy on random traces."""
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.simulate import policies, traces
from provisioner.simulate.bound import bound
from provisioner.simulate.run import replay

BOOT = 100.0


def brute_force(jobs, boot):
    """Least boot-plus-idle time over every way of giving whole-VM jobs (each fills a VM,
    starting at its submit time) to VMs: each job either opens a new VM (one boot) or
    reuses one that has gone idle (the idle gap). Exhaustive, for a handful of jobs."""
    jobs = sorted(jobs)
    best = float("inf")
    # choice[i] = None: job i opens a VM; else the index of the earlier job whose VM it reuses
    options = [[None] + list(range(i)) for i in range(len(jobs))]
    for choice in itertools.product(*options):
        free_at, used, cost, ok = {}, set(), 0.0, True
        for i, (submit, runtime) in enumerate(jobs):
            prev = choice[i]
            if prev is None:
                cost += boot
            elif prev in used or free_at[prev] > submit:
                ok = False  # that VM is taken by another job, or still busy
                break
            else:
                used.add(prev)
                cost += submit - free_at[prev]
            free_at[i] = submit + runtime
        if ok:
            best = min(best, cost)
    return best


whole_vm_jobs = st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 300)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(whole_vm_jobs)
def test_bound_equals_the_best_zero_wait_schedule(jobs):
    b = bound(((s, r, 8, 16000) for s, r in jobs), 8, 16000, BOOT)
    assert abs(b.wasted * 3600 - brute_force(jobs, BOOT)) < 1e-6
    assert abs((b.billed - b.wasted) * 3600 - sum(r for _, r in jobs)) < 1e-6  # busy: each job's run


def test_bound_packs_small_jobs_and_keeps_a_vm_through_a_short_gap():
    # two 4-core jobs share one 8-core VM; the third comes 50 s after they end, within a boot
    b = bound([(0, 100, 4, 1000), (10, 90, 4, 1000), (150, 100, 8, 1000)], 8, 16000, BOOT)
    assert b.launches == 1
    assert abs(b.wasted * 3600 - (BOOT + 50)) < 1e-6
    # 200 s later instead: stopping and booting again is cheaper than idling
    b = bound([(0, 100, 4, 1000), (10, 90, 4, 1000), (300, 100, 8, 1000)], 8, 16000, BOOT)
    assert b.launches == 2 and abs(b.wasted * 3600 - 2 * BOOT) < 1e-6
    assert bound([(0, 10, 16, 1000)], 8, 16000, BOOT).unfit == 1


random_traces = st.lists(
    st.tuples(st.floats(0, 3 * 3600), st.floats(30, 3600), st.sampled_from([1, 2, 4, 8])), min_size=1, max_size=25)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_traces)
def test_no_policy_beats_the_bound_on_both_waste_and_wait(sim_conf, rows):
    """A policy may waste less than the clairvoyant only by making jobs wait: a job started
    late can share a VM that the clairvoyant, starting it on time, had to boot or idle for
    (hypothesis finds such traces). It never wastes less with no job waiting."""
    conf = sim_conf("cloud", tail=3600)  # every policy rewrites its chain
    jobs = traces.normalise([traces.Job(i, s, r, c, 2000 * c) for i, (s, r, c) in enumerate(rows)])
    for name in policies.POLICIES:
        s = replay(conf, jobs, name).overall
        assert s.finished == len(jobs), name
        assert s.wasted >= s.bound_wasted - 1e-9 or s.prov_max > 0, (name, s.wasted, s.bound_wasted)


def test_a_queue_of_several_types_is_bounded_by_the_fastest_to_boot(sim_conf, simulate, queue_texts):
    text = queue_texts["cloud"].replace("instance_types = c5.2xlarge", "instance_types = c5.2xlarge, c5.xlarge")
    conf = sim_conf(text, boot_jitter=30, **{"boot_time.c5.xlarge": 100})
    sim = simulate(conf, [traces.Job(0, 0.0, 60.0)])
    assert sim.backend.reference("CLOUD") == (8, 16384, 100, 0.34)  # the first type's size and price
