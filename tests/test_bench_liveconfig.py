"""benchmarks/liveconfig.py: the live config, changed for a benchmark, is always put back.

A signal is sent to this process at each moment of the swap (while the new text is written,
just after the rename, inside the with-block, while the old text is written back, just after
that rename); whatever the moment, the file must end up as it was, with nothing left beside it,
and the signal handlers as they were.
"""

import os
import signal

import pytest

from benchmarks import liveconfig

ORIGINAL = b"images:\n  - site/app:1\n"
EDITED = b"images:\n  - site/app:1\n  - bench/image:1\n"
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "socker.yaml"
    path.write_bytes(ORIGINAL)
    path.chmod(0o640)
    return path


@pytest.fixture
def caller_handlers():
    """Handlers of the caller's own, which record what reaches them; the test's ones come back after."""
    received = []

    def record(signum, frame):
        received.append(signum)

    saved = {sig: signal.signal(sig, record) for sig in SIGNALS}
    yield record, received
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def assert_as_before(config, record):
    assert config.read_bytes() == ORIGINAL
    assert config.stat().st_mode & 0o7777 == 0o640
    assert sorted(p.name for p in config.parent.iterdir()) == ["socker.yaml"]
    assert [signal.getsignal(sig) for sig in SIGNALS] == [record] * len(SIGNALS)


def test_inside_the_block_the_new_text_after_it_the_old_one(config, caller_handlers):
    record, received = caller_handlers
    with liveconfig.replaced(config, EDITED):
        assert config.read_bytes() == EDITED
        assert config.stat().st_mode & 0o7777 == 0o640
    assert_as_before(config, record)
    assert received == []


def test_an_exception_inside_the_block_restores(config, caller_handlers):
    record, _ = caller_handlers
    with pytest.raises(ZeroDivisionError):
        with liveconfig.replaced(config, EDITED):
            1 / 0
    assert_as_before(config, record)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("moment", ["writing the new text", "just after the swap", "inside the block",
                                    "writing the old text back", "just after the swap back"])
def test_a_signal_at_any_moment_restores(config, caller_handlers, monkeypatch, sig, moment):
    record, received = caller_handlers
    real_replace = os.replace
    renames = []

    def replace_with_a_signal(src, dst):
        # The signal comes between writing the temporary file and renaming it, or just after.
        renames.append(dst)
        nth = {"writing the new text": 1, "writing the old text back": 2}.get(moment)
        if len(renames) == nth:
            os.kill(os.getpid(), sig)
        real_replace(src, dst)
        nth = {"just after the swap": 1, "just after the swap back": 2}.get(moment)
        if len(renames) == nth:
            os.kill(os.getpid(), sig)

    monkeypatch.setattr(os, "replace", replace_with_a_signal)
    interrupted = False
    try:
        with liveconfig.replaced(config, EDITED):
            if moment == "inside the block":
                os.kill(os.getpid(), sig)
    except KeyboardInterrupt:
        interrupted = True
    monkeypatch.undo()
    assert_as_before(config, record)
    # The signal is not lost: it stopped the block, or it reached the caller's own handler.
    assert interrupted or received == [sig]
    assert not (interrupted and received)
