"""What socker's cost may be, against `docker run`'s, and which figures of a run missed it."""

EXIT_TARGET_MISSED = 3
# (what, the keys to the figure in bench.py's results, the most it may be)
TARGETS = (
    ("start p50, socker / docker run", ("start", "ratio_p50_socker_docker"), 1.05),
    ("start p90, socker / docker run", ("start", "ratio_p90_socker_docker"), 1.10),
    ("32 simultaneous starts, socker / docker run", ("concurrency", 32, "ratio_socker_docker"), 1.05),
    ("anonymous memory of socker + guardian, MiB", ("memory", "socker_plus_guardian", "anon_mib"), 16.0),
    ("`socker --help` p50 / `docker --help`", ("profile", "help", "ratio_p50_socker_docker"), 1.5),
    ("cold start p50, socker / docker", ("coldstart", "ratio_p50_socker_docker"), 1.10),
)


def missed_targets(results):
    """["what: figure > most", ...] for the targets whose figure this run measured and missed."""
    missed = []
    for what, keys, most in TARGETS:
        value = results
        for key in keys:
            if isinstance(value, list):  # the concurrency rows, one per number of starts
                value = next((row for row in value if row.get("n") == key), None)
            elif isinstance(value, dict):
                value = value.get(key)
            if value is None:
                break
        if value is not None and value > most:
            missed.append(f"{what}: {value:.2f} > {most:.2f}")
    return missed
