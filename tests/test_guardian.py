"""What the guardian writes into the audit record of a run socker did not finish, and when a run's
container counts as gone."""

import pytest

from socker.run import guardian


def test_a_container_socker_never_learned_the_id_of_is_named_whole():
    name = "socker-1001-j4242-0123456789ab"
    assert guardian.audited_name(None, name) == name


def test_a_container_with_an_id_is_named_by_its_short_id():
    assert guardian.audited_name("c0ffee" * 10, "socker-1001-0123456789ab") == "c0ffeec0ffee"


class FakeEngine:
    """Says whether there was anything to remove, as Engine.remove does."""

    def __init__(self, present):
        self.present, self.asked = set(present), []

    def remove(self, reference):
        self.asked.append(reference)
        found = reference in self.present
        self.present.discard(reference)
        return found


@pytest.mark.parametrize("present, container_id, gone", [
    ({"c0ffee"}, "c0ffee", True),  # removed
    (set(), "c0ffee", True),  # the ID the engine gave is not there: it was removed already
    ({"socker-1-x"}, None, True),  # no ID yet, removed by name
    (set(), None, False),  # no ID and nothing by that name: maybe not created yet
])
def test_a_container_is_gone_once_removed_or_missing_by_its_id_but_not_missing_by_name_alone(present, container_id,
                                                                                            gone):
    engine = FakeEngine(present)
    assert guardian.remove_container(engine, container_id, "socker-1-x") is gone
    assert engine.asked == [container_id or "socker-1-x"]
