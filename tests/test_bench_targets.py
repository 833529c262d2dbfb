"""benchmarks/targets.py: which figures of a benchmark run missed their target."""

from benchmarks.targets import missed_targets


def test_targets_missed_are_named_and_parts_not_measured_are_not():
    results = {"start": {"ratio_p50_socker_docker": 1.21, "ratio_p90_socker_docker": 1.10},
               "concurrency": [{"n": 16, "ratio_socker_docker": 2.0}, {"n": 32, "ratio_socker_docker": 1.06}],
               "memory": {"socker_plus_guardian": {"anon_mib": 15.9}}}
    assert missed_targets(results) == ["start p50, socker / docker run: 1.21 > 1.05",
                                       "32 simultaneous starts, socker / docker run: 1.06 > 1.05"]
    assert missed_targets({}) == []
