"""Weighted pilot-type choice: parsing, seeding, and frequencies for 3 groups
(APF's pick was wrong from three groups on)."""
import math
from collections import Counter

import pytest
from wrapperlib.lookup import Picker, parse_pilottypes

N = 30000


def frequencies(spec, seed=12345, n=N):
    picker = Picker(seed)
    items = parse_pilottypes(spec)
    return Counter(picker.pick(items) for _ in range(n))


def assert_within_bounds(counts, expected_shares, n=N):
    """Every count within 5 standard deviations of its binomial expectation."""
    for name, share in expected_shares.items():
        sd = math.sqrt(n * share * (1 - share))
        assert abs(counts[name] - n * share) <= 5 * sd, (name, counts[name], n * share)


@pytest.mark.parametrize("spec, expected", [
    ("a", [("a", 1)]),
    ("a,b,c", [("a", 1), ("b", 1), ("c", 1)]),
    ("a:99,b:1", [("a", 99), ("b", 1)]),
    ("a:3,b", [("a", 3), ("b", 1)]),
    ("a:0,b:1", [("a", 0), ("b", 1)]),
    ("-", []),
])
def test_parse(spec, expected):
    assert parse_pilottypes(spec) == expected


@pytest.mark.parametrize("spec", ["a:", "a:-1", "a:1.5", ",a", "a b", "-,a", "a:0"])
def test_parse_rejects(spec):
    with pytest.raises(ValueError):
        parse_pilottypes(spec)


def test_three_weighted_groups():
    assert_within_bounds(frequencies("a:60,b:30,c:10"), {"a": 0.6, "b": 0.3, "c": 0.1})


def test_three_groups_with_small_shares_first():
    assert_within_bounds(frequencies("a:1,b:1,c:98"), {"a": 0.01, "b": 0.01, "c": 0.98})


def test_unweighted_groups_share_equally():
    assert_within_bounds(frequencies("a,b,c"), {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_zero_weight_is_never_chosen():
    counts = frequencies("a:1,b:0,c:1", n=5000)
    assert counts["b"] == 0 and counts["a"] and counts["c"]


def test_the_seed_makes_choices_repeatable():
    items = parse_pilottypes("a:5,b:3,c:2")
    first, second = Picker(7), Picker(7)
    assert [first.pick(items) for _ in range(200)] == [second.pick(items) for _ in range(200)]


def test_a_single_type_needs_no_randomness():
    picker = Picker()
    assert picker.pick([("only", 0)]) == "only" and picker.rng is None


def test_seed_from_option_or_environment(stage_two, workdir, base_args, monkeypatch, capsys):
    def chosen(args):
        stage_two.main(base_args + ["--wrapperplugin=trivial", "--wrapperpilottype=a,b,c,d,e,f"] + args)
        return capsys.readouterr().out.split("pilottype=")[1].split()[0]

    by_option = {chosen(["--wrapperseed=3"]) for _ in range(3)}
    monkeypatch.setenv("WRAPPER_SEED", "3")
    by_environment = {chosen([]) for _ in range(3)}
    assert len(by_option) == 1 and by_option == by_environment
