"""What the guardian writes into the audit record of a run socker did not finish."""

from socker.run import guardian


def test_a_container_socker_never_learned_the_id_of_is_named_whole():
    name = "socker-1001-j4242-0123456789ab"
    assert guardian.audited_name(None, name) == name


def test_a_container_with_an_id_is_named_by_its_short_id():
    assert guardian.audited_name("c0ffee" * 10, "socker-1001-0123456789ab") == "c0ffeec0ffee"
