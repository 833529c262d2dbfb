"""Frozen value types, made without compiling anything at import.

`dataclasses.dataclass` writes each class's methods as source text and compiles it when the
module is imported, and imports `inspect` with `ast` and `dis` to do so: for socker's value
types that was about 15 ms of every start, and 15 of the 39 ms of `socker --help`. A tuple
(`typing.NamedTuple`) would be cheap, but it is equal to any tuple of the same items, false
when empty and written by `json` as a list; socker's values compare by type and fields only,
as a frozen dataclass does.

A subclass of `Value` lists its fields as class annotations, in order; a class attribute of
the same name is that field's default. Instances cannot be changed: `replace` makes a new one.
"""

_MISSING = object()


class Value:
    _fields = ()
    _defaults = {}
    _hidden = frozenset()  # fields whose values repr() leaves out

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = tuple(cls.__dict__.get("__annotations__", {}))
        cls._fields = cls._fields + own
        cls._defaults = {**cls._defaults, **{name: cls.__dict__[name] for name in own if name in cls.__dict__}}
        ordered = [name for name in cls._fields if name not in cls._defaults]
        if cls._fields[:len(ordered)] != tuple(ordered):
            raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")

    def __init__(self, *args, **kwargs):
        name = type(self).__name__
        if len(args) > len(self._fields):
            raise TypeError(f"{name}() takes {len(self._fields)} arguments, {len(args)} given")
        values = dict(zip(self._fields, args))
        for field, value in kwargs.items():
            if field not in self._fields:
                raise TypeError(f"{name}() has no field {field!r}")
            if field in values:
                raise TypeError(f"{name}() got {field!r} twice")
            values[field] = value
        for field in self._fields:
            value = values.get(field, self._defaults.get(field, _MISSING))
            if value is _MISSING:
                raise TypeError(f"{name}() is missing {field!r}")
            object.__setattr__(self, field, value)

    def _values(self):
        return tuple(getattr(self, field) for field in self._fields)

    def replace(self, **changes):
        """A copy with `changes` made."""
        return type(self)(**{**dict(zip(self._fields, self._values())), **changes})

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        shown = (f"{field}={getattr(self, field)!r}" for field in self._fields if field not in self._hidden)
        return f"{type(self).__name__}({', '.join(shown)})"

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} cannot be changed: use replace()")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} cannot be changed")
