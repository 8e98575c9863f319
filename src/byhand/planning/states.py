"""Django's project states as the executor computes them, cloned and collected cheaply."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.migrations.state import ModelState, ProjectState

from byhand.planning.plans import Plan

__all__ = [
    "GC_THRESHOLD",
    "UNFROZEN_COUNT",
    "clone_state",
    "fewer_collections",
    "project_state",
    "state_before",
    "states_backwards",
]


def project_state(executor: MigrationExecutor, *, with_applied: bool) -> ProjectState:
    """The executor's own starting state: the unmigrated apps, plus every applied migration
    when ``with_applied`` (the one place byhand calls Django's private method)."""
    state: ProjectState = executor._create_project_state(  # type: ignore[attr-defined]
        with_applied_migrations=with_applied
    )
    return state


def clone_state(state: ProjectState) -> ProjectState:
    """What ``state.clone()`` returns, without ModelState's sanity checks.

    Django's clone builds each model state through ModelState.__init__, which checks
    every field of every model again (is it bound, does it point at a model class) and
    each index's name; byhand clones before every operation that reads its old state,
    so those checks were a tenth of a 534-migration plan's state work. The copies are
    made as Django's clone makes them (fields, options and managers copied one level,
    bases shared, StateApps cloned by Django), from model states that passed the checks
    when they were made. If Django's clone gives model states of another shape (another
    Django version), its own clone is used.
    """
    if not _clones_as_django_does(state):
        return state.clone()
    models = {key: _clone_model_state(model_state) for key, model_state in state.models.items()}
    clone = ProjectState(models=models, real_apps=state.real_apps)
    if "apps" in state.__dict__:
        clone.apps = state.apps.clone()
    clone.is_delayed = state.is_delayed
    return clone


def _clone_model_state(model_state: ModelState) -> ModelState:
    if type(model_state) is not ModelState:
        return model_state.clone()
    clone = ModelState.__new__(ModelState)
    clone.app_label = model_state.app_label
    clone.name = model_state.name
    clone.fields = dict(model_state.fields)
    clone.options = dict(model_state.options)
    clone.bases = model_state.bases
    clone.managers = list(model_state.managers)
    return clone


def _clones_as_django_does(state: ProjectState) -> bool:
    """Whether Django's clone of a model state and of ``state`` has the attributes
    clone_state sets, and no others (checked once per process, on the first model)."""
    if not _CLONE_SHAPE:
        model_state = next(iter(state.models.values()), None)
        if model_state is None or type(state) is not ProjectState:
            return False
        django_project = ProjectState(models={}, real_apps=state.real_apps).clone()
        _CLONE_SHAPE.append(
            set(vars(model_state.clone())) == _MODEL_STATE_ATTRIBUTES
            and set(vars(django_project)) == _PROJECT_STATE_ATTRIBUTES
        )
    return _CLONE_SHAPE[0] and type(state) is ProjectState


#: What Django 4.2-5.2 set on a cloned ModelState and on a cloned, unrendered ProjectState.
_MODEL_STATE_ATTRIBUTES = {"app_label", "name", "fields", "options", "bases", "managers"}
_PROJECT_STATE_ATTRIBUTES = {"models", "real_apps", "is_delayed", "_relations"}
_CLONE_SHAPE: list[bool] = []


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Let the cyclic garbage collector run less often while Django evolves states.

    Each state change renders model classes anew and drops the old ones (cycles), so
    with Python's defaults a collection runs every 700 allocations and walks the whole
    young heap again and again: over a tenth of a 534-migration ``byhand sql``
    (benchmarks/RESULTS.md). What exists before (Django, the project, the loaded
    migrations) lives to the end of the process anyway, so it is frozen out of every
    collection (``gc.freeze``; unless someone else froze objects already, see
    UNFROZEN_COUNT: unfreezing is all or nothing); collections come after GC_THRESHOLD allocations. Garbage is still
    collected, so memory stays bounded. Thresholds and frozen objects are restored
    afterwards; with the collector turned off, nothing is changed.
    """
    if not gc.isenabled():
        yield
        return
    thresholds = gc.get_threshold()
    freezing = gc.get_freeze_count() <= UNFROZEN_COUNT
    if freezing:
        gc.freeze()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freezing:
            gc.unfreeze()


#: Allocations between two collections of the youngest generation in fewer_collections
#: (Python's default is 700).
GC_THRESHOLD = 50_000

#: What gc.get_freeze_count() says when nobody has frozen anything, taken when byhand is
#: imported: 0, except on CPython 3.12, whose collector keeps immortal objects in the
#: permanent generation (375 from interpreter start, back after any full collection
#: that follows a gc.unfreeze()).
UNFROZEN_COUNT = gc.get_freeze_count()


def states_backwards(plan: Plan) -> dict[Migration, ProjectState]:
    """Each migration's pre-state, computed as MigrationExecutor._migrate_all_backwards does."""
    executor = plan.executor
    to_run = set(plan.migrations)
    states: dict[Migration, ProjectState] = {}
    state = project_state(executor, with_applied=False)
    applied = {
        executor.loader.graph.nodes[k] for k in executor.loader.applied_migrations if k in executor.loader.graph.nodes
    }
    full_plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    for migration, _ in full_plan:
        if not to_run:
            break
        if migration in to_run:
            if "apps" not in state.__dict__:
                state.apps  # noqa: B018 -- render once, as Django does
            states[migration] = state
            state = migration.mutate_state(state, preserve=True)
            to_run.remove(migration)
        elif migration in applied:
            migration.mutate_state(state, preserve=False)
    return states


def state_before(executor: MigrationExecutor, migration: Migration) -> ProjectState:
    """The state migrate has when it reaches ``migration``: unmigrated apps and every applied
    migration, leaving out this one and those that depend on it (a backwards run has not
    unrecorded them yet)."""
    key = (migration.app_label, migration.name)
    after = set(executor.loader.graph.backwards_plan(key))  # itself and all that depend on it
    state = project_state(executor, with_applied=False)
    applied = executor.loader.applied_migrations
    full_plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    for planned, _backwards in full_plan:
        node = (planned.app_label, planned.name)
        if node in applied and node not in after:
            planned.mutate_state(state, preserve=False)
    return state
