import json

import pytest

from socker.value import Value


class Point(Value):
    x: int
    y: int
    label: str = ""


class Other(Value):
    x: int
    y: int
    label: str = ""


class Secret(Value):
    user: str
    password: str
    _hidden = frozenset({"password"})


class Empty(Value):
    pass


class AlsoEmpty(Value):
    pass


def test_fields_come_from_arguments_by_position_or_name_and_defaults_fill_the_rest():
    p = Point(1, y=2)
    assert (p.x, p.y, p.label) == (1, 2, "")
    assert Point(1, 2, "a").label == "a"


@pytest.mark.parametrize("make, message", [
    (lambda: Point(1), "missing 'y'"),
    (lambda: Point(1, 2, "a", 4), "takes 3 arguments, 4 given"),
    (lambda: Point(1, 2, z=3), "no field 'z'"),
    (lambda: Point(1, 2, x=3), "got 'x' twice"),
])
def test_wrong_arguments_are_refused_by_name(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_a_field_without_a_default_cannot_follow_one_with_a_default():
    with pytest.raises(TypeError, match="follows one with a default"):
        class Bad(Value):
            a: int = 0
            b: int


def test_values_compare_by_type_and_fields_only():
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2) != Other(1, 2)
    assert Point(1, 2) != (1, 2, "")
    assert Empty() != AlsoEmpty()
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2


def test_an_empty_value_is_true_and_is_not_written_as_a_list():
    assert bool(Empty())
    with pytest.raises(TypeError):
        json.dumps(Point(1, 2))


def test_a_value_cannot_be_changed_and_replace_makes_a_new_one():
    p = Point(1, 2)
    with pytest.raises(AttributeError):
        p.x = 5
    with pytest.raises(AttributeError):
        del p.x
    q = p.replace(y=7)
    assert (p.y, q.y, q.x) == (2, 7, 1)
    with pytest.raises(TypeError, match="no field 'z'"):
        p.replace(z=1)


def test_repr_names_the_fields_and_leaves_hidden_ones_out():
    assert repr(Point(1, 2)) == "Point(x=1, y=2, label='')"
    assert repr(Secret("alice", "hunter2")) == "Secret(user='alice')"
    assert Secret("alice", "hunter2").password == "hunter2"
