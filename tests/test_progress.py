"""What a pull shows on stderr: live on a terminal, two lines otherwise."""

import io

from socker.registry.progress import PullProgress

REF = "registry.example.org/bio/bowtie:2.5"
DIGEST = "sha256:" + "ab" * 32


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def pull_messages():
    """The engine's messages for an image of two layers, 3 MB and 1 MB; (seconds later, message)."""
    yield 0.0, {"status": "Pulling from bio/bowtie", "id": "2.5"}
    for layer in ("aaa", "bbb"):
        yield 0.0, {"status": "Pulling fs layer", "id": layer}
    for i in range(1, 4):
        yield 0.5, {"status": "Downloading", "id": "aaa", "progressDetail": {"current": i * 1_000_000,
                                                                             "total": 3_000_000}}
    yield 0.5, {"status": "Downloading", "id": "bbb", "progressDetail": {"current": 1_000_000, "total": 1_000_000}}
    for layer in ("aaa", "bbb"):
        yield 0.1, {"status": "Verifying Checksum", "id": layer, "progressDetail": {}}
        yield 0.1, {"status": "Extracting", "id": layer, "progressDetail": {"current": 10, "total": 20}}
        yield 0.1, {"status": "Pull complete", "id": layer, "progressDetail": {}}
    yield 0.0, {"status": f"Digest: {DIGEST}"}
    yield 0.0, {"status": f"Status: Downloaded newer image for {REF}"}


def feed(live):
    clock, out = Clock(), io.StringIO()
    progress = PullProgress(REF, out, live=live, clock=clock)
    for later, message in pull_messages():
        clock.now += later
        progress.update(message)
    progress.finished(DIGEST)
    return out.getvalue()


def test_off_a_terminal_one_line_when_the_pull_starts_and_one_when_it_ends():
    assert feed(live=False) == (f"socker: pulling {REF}\n"
                                f"socker: pulled {REF} ({DIGEST}, 4.0 MB in 2.6 s)\n")


def test_on_a_terminal_one_line_redrawn_in_place():
    shown = feed(live=True)
    assert "\n" not in shown[:-1] and shown.endswith("\n")
    frames = shown.split("\r\x1b[K")[1:]
    assert frames[0] == f"socker: pulling {REF}: 0/0 layers, 0.0 of 0.0 MB, 0.0 MB/s"
    assert f"socker: pulling {REF}: 0/2 layers, 2.0 of 3.0 MB, 2.0 MB/s" in frames
    assert f"socker: pulling {REF}: 1/2 layers, 4.0 of 4.0 MB, 1.7 MB/s" in frames
    assert frames[-1] == f"socker: pulled {REF} ({DIGEST}, 4.0 MB in 2.6 s)\n"


def test_a_terminal_is_redrawn_at_most_five_times_a_second():
    clock, out = Clock(), io.StringIO()
    progress = PullProgress(REF, out, live=True, clock=clock)
    for i in range(100):
        clock.now += 0.01
        progress.update({"status": "Downloading", "id": "aaa", "progressDetail": {"current": i, "total": 100}})
    assert out.getvalue().count("\r") == 5  # over one second


def test_a_failed_pull_leaves_the_line_to_the_reason():
    out = io.StringIO()
    progress = PullProgress(REF, out, live=True, clock=Clock())
    progress.update({"status": "Pulling from bio/bowtie", "id": "2.5"})
    progress.abandoned()
    assert out.getvalue().endswith("\r\x1b[K")
    quiet = io.StringIO()
    progress = PullProgress(REF, quiet, live=False, clock=Clock())
    progress.update({"status": "Pulling from bio/bowtie", "id": "2.5"})
    progress.abandoned()
    assert quiet.getvalue() == f"socker: pulling {REF}\n"


def test_layers_the_node_has_count_as_done_without_bytes():
    out = io.StringIO()
    progress = PullProgress(REF, out, live=False, clock=Clock())
    progress.update({"status": "Already exists", "id": "aaa", "progressDetail": {}})
    assert progress.summary() == "1/1 layers, 0.0 of 0.0 MB, 0.0 MB/s"
