"""planning/states.py: Django's states: an exact, cheaper clone; fewer collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField, AlterField
from django.db.migrations.state import ModelState, ProjectState

from byhand.planning import states
from byhand.planning.states import GC_THRESHOLD, UNFROZEN_COUNT, clone_state, fewer_collections


@pytest.fixture
def state() -> ProjectState:
    """The example project's final state, rendered, then changed by a delayed reload."""
    state: ProjectState = MigrationLoader(None, ignore_no_migrations=True).project_state()
    state.apps  # noqa: B018 -- rendered, as byhand's states are
    key = next(k for k, m in sorted(state.models.items()) if "id" in m.fields and len(m.fields) > 1)
    name = next(n for n, f in state.models[key].fields.items() if not f.is_relation and n != "id")
    AlterField(key[1], name, models.TextField(default="")).state_forwards(key[0], state)
    AddField(key[1], "byhand_extra", models.IntegerField(null=True)).state_forwards(key[0], state)
    assert state.is_delayed
    return state


def pattern(original: ProjectState, clone: ProjectState) -> dict[Any, Any]:
    """What a clone shares with its original and what it holds a copy of, attribute by attribute."""
    out: dict[Any, Any] = {
        "class": type(clone),
        "attributes": sorted(vars(clone)),
        "is_delayed": clone.is_delayed,
        "real_apps": (clone.real_apps == original.real_apps, clone.real_apps is original.real_apps),
        "relations": clone._relations,
        "models": clone.models is original.models,
        "keys": sorted(clone.models),
    }
    for key, model in original.models.items():
        copy = clone.models[key]
        out[key] = (
            type(copy),
            sorted(vars(copy)),
            copy is model,
            copy == model,
            (copy.app_label, copy.name) == (model.app_label, model.name),
            copy.fields is model.fields,
            [(name, field is model.fields[name]) for name, field in copy.fields.items()],
            copy.options is model.options,
            {name: value is model.options[name] for name, value in copy.options.items()},
            copy.bases is model.bases,
            copy.managers is model.managers,
            [a is b for a, b in zip(copy.managers, model.managers, strict=True)],
        )
    if "apps" in vars(original):
        out["apps"] = (clone.apps is original.apps, sorted(clone.apps.all_models) == sorted(original.apps.all_models))
    return out


def test_clone_state_gives_what_djangos_clone_gives(state: ProjectState) -> None:
    assert pattern(state, clone_state(state)) == pattern(state, state.clone())
    unrendered = ProjectState(models=dict(state.models), real_apps=state.real_apps)
    assert pattern(unrendered, clone_state(unrendered)) == pattern(unrendered, unrendered.clone())


def test_a_clone_of_another_shape_falls_back_to_djangos_own(
    state: ProjectState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a Django to clone model states with more attributes, clone_state would not
    leave them out: it uses Django's clone instead."""
    django_clone = ModelState.clone

    def clone_with_more(self: ModelState) -> ModelState:
        clone = django_clone(self)
        clone.something_new = True  # type: ignore[attr-defined]
        return clone

    monkeypatch.setattr(ModelState, "clone", clone_with_more)
    monkeypatch.setattr(states, "_CLONE_SHAPE", [])
    clone = clone_state(state)
    assert all(getattr(m, "something_new", False) for m in clone.models.values())


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_fewer_collections_still_collects_and_restores_the_collector(collector: None) -> None:
    before = gc.get_threshold()
    stops: list[dict[str, int]] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            stops.append(info)

    with fewer_collections():
        assert gc.get_threshold() == (max(before[0], GC_THRESHOLD), *before[1:])
        assert gc.get_freeze_count() > UNFROZEN_COUNT
        gc.callbacks.append(count)
        try:
            for _ in range(3 * GC_THRESHOLD):
                cycle: list[Any] = []
                cycle.append(cycle)
        finally:
            gc.callbacks.remove(count)
        assert 1 <= len(stops) <= 6  # at Python's default of 700: hundreds
        assert sum(info["collected"] for info in stops) > GC_THRESHOLD
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() <= UNFROZEN_COUNT


def test_fewer_collections_leaves_a_disabled_collector_and_others_frozen_objects_alone(collector: None) -> None:
    before = gc.get_threshold()
    gc.disable()
    with fewer_collections():
        assert gc.get_threshold() == before and gc.get_freeze_count() <= UNFROZEN_COUNT
    assert not gc.isenabled()
    gc.enable()
    gc.freeze()
    frozen = gc.get_freeze_count()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], GC_THRESHOLD)
    assert gc.get_freeze_count() == frozen
