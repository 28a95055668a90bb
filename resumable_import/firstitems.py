"""The dump's first items, judged before anything is written: the key mistake they all
share (a key type given wrong, or a dump not for this table), the reading of a one-line
wrapper whose items fit the key, and no table created with a key its items fail."""

from __future__ import annotations

from pathlib import Path

from .checks import key_mistake_in
from .errors import InputError, KeyMismatchError, KeyMistake, Text
from .keys import KeySpec
from .reader import Dump, describe_reading
from .transform import Apply, Check, Transform


def key_mistake_of(
    dump: Dump, keys: tuple[KeySpec, ...], transform: Transform | None
) -> KeyMistake | None:
    """The key mistake all of the dump's first items share, judged on what the transform
    makes of them when there is one."""
    if transform is None:
        return key_mistake_in(dump, keys)
    return key_mistake_in(dump, keys, Apply(transform, dump.items_as), Check(keys))


def settle_reading(dump: Dump, keys: tuple[KeySpec, ...], transform: Transform | None) -> None:
    """When every first item of the reading taken (of a file that is one object on one
    line) lacks the table's key, try the file's other readings on their first items: the
    one reading whose items fit is taken, and said with how to ask for it; several that
    fit are refused, naming each. None that fits leaves the key mistake to be said."""
    if not dump.others or not key_mistake_of(dump, keys, transform):
        return
    fits = []
    for shape in dump.others:
        trial = Dump(dump.location, shape, items_as=dump.items_as)
        try:
            if trial.head(1) and not key_mistake_of(trial, keys, transform):
                fits.append(shape)
        except InputError:
            continue
    name = Path(str(dump.path)).name
    key = ", ".join(k.name for k in keys)
    if len(fits) > 1:
        readings = [describe_reading(shape) for shape in fits]
        raise InputError(
            Text(
                f"{name}: the items read first, ",
                describe_reading(dump.shape),
                f", lack the table's key {key}, and {len(fits)} other readings have it: ",
                Text.joined(", ", readings),
            ),
            Text("say which with one of them"),
        )
    if fits:
        first = describe_reading(dump.shape)
        dump.read_as(fits[0])
        dump.note = Text(
            f"{name}: the items of ", first, f" lack the table's key {key}; reading ",
            describe_reading(fits[0]), " instead, the one reading whose items have it",
        )  # fmt: skip


def refuse_a_wrong_key(dump: Dump, keys: tuple[KeySpec, ...], transform: Transform | None) -> None:
    """Refuse to create a table with a key that every one of the dump's first items fails
    the same way: the table would stay behind, empty, with the wrong key."""
    settle_reading(dump, keys, transform)
    if mistake := key_mistake_of(dump, keys, transform):
        if mistake.fitting_keys:
            hint = f"the table was not created; pass create_keys={mistake.fitting_keys}"
        else:
            hint = (
                "the table was not created; name in create_keys an attribute the items have, "
                "or check that the file is the dump you mean"
            )
        raise KeyMismatchError(mistake, "create", hint)
