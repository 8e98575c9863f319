"""Choose the plan exactly as ``manage.py migrate`` would, with Django's own loader and graph."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.apps import apps
from django.db import DatabaseError, connections, router
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations import RenameModel, RunPython, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState, ProjectState

from byhand import recording
from byhand.exceptions import ByhandError, IrreversibleMigrations, PlanError

__all__ = [
    "DatabaseUnavailable",
    "Plan",
    "check_app",
    "check_reversible",
    "clone_state",
    "describe",
    "fewer_collections",
    "file_index",
    "find_migration",
    "inject_contenttype_renames",
    "is_noop",
    "manual_steps_of",
    "pending_plan",
    "project_state",
    "python_operations",
    "python_step_name",
    "replacement_rows",
    "single_plan",
    "states_backwards",
]

Key = tuple[str, str]


class DatabaseUnavailable(ByhandError):
    """The database could not be reached or read."""

    def __init__(self, alias: str, error: Exception) -> None:
        super().__init__(
            f"could not read the migration history of database '{alias}': "
            f"{str(error).strip()}. Check that the server is up and the settings are right."
        )


@dataclass
class Plan:
    """What to run, in order, and everything needed to compute Django's states for it."""

    alias: str
    executor: MigrationExecutor
    migrations: list[Migration]
    backwards: bool
    target: str | None = None  # as given on the command line, for the header
    recorded: set[Key] = field(default_factory=set)  # rows in django_migrations now
    has_recorder_table: bool = True

    @property
    def loader(self) -> MigrationLoader:
        return self.executor.loader


def _executor(alias: str) -> tuple[MigrationExecutor, set[Key], bool]:
    connection = connections[alias]
    try:
        executor = MigrationExecutor(connection)
        recorder = MigrationRecorder(connection)
        has_table = recorder.has_table()
        recorded = set(recorder.applied_migrations()) if has_table else set()
    except DatabaseError as exc:
        raise DatabaseUnavailable(alias, exc) from exc
    try:
        executor.loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as exc:
        raise PlanError(
            f"{exc}\nThe history in django_migrations is inconsistent; fix the recorded rows "
            "(byhand record / unrecord) before planning."
        ) from None
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        names = "; ".join(f"{', '.join(sorted(n))} in {app}" for app, n in sorted(conflicts.items()))
        raise PlanError(
            f"conflicting migrations, several leaf nodes in the graph: ({names}). "
            "Run 'manage.py makemigrations --merge' first."
        )
    return executor, recorded, has_table


def check_app(loader: MigrationLoader, app_label: str) -> None:
    """The app is installed and has migrations, or a PlanError saying which is not so."""
    try:
        apps.get_app_config(app_label)
    except LookupError as exc:
        raise PlanError(f"{exc} Use the app's label (AppConfig.label), as migrate does.") from None
    if app_label not in loader.migrated_apps:
        raise PlanError(f"app '{app_label}' does not have migrations.")


def find_migration(loader: MigrationLoader, app_label: str, name: str) -> Key:
    """An exact name wins; otherwise a unique prefix; an ambiguous prefix lists the candidates."""
    if (app_label, name) in loader.disk_migrations:
        return app_label, name
    candidates = sorted(n for a, n in loader.disk_migrations if a == app_label and n.startswith(name))
    if not candidates:
        raise PlanError(f"cannot find a migration matching '{name}' in app '{app_label}'.")
    if len(candidates) > 1:
        raise PlanError(
            f"more than one migration matches '{name}' in app '{app_label}': "
            f"{', '.join(candidates)}. Give more of the name."
        )
    return app_label, candidates[0]


def pending_plan(*, database: str, app_label: str | None = None, migration: str | None = None) -> Plan:
    """The plan ``manage.py migrate [APP_LABEL [MIGRATION]] --database ALIAS`` would run."""
    executor, recorded, has_table = _executor(database)
    loader = executor.loader
    if app_label is not None:
        check_app(loader, app_label)
    if app_label is not None and migration is not None:
        if migration == "zero":
            targets: list[tuple[str, str | None]] = [(app_label, None)]
        else:
            target = find_migration(loader, app_label, migration)
            if target not in loader.graph.nodes and target in loader.replacements:
                # A partly applied squash is not a node; migrate targets its last replaced one.
                target = loader.replacements[target].replaces[-1]
            targets = [target]
    elif app_label is not None:
        targets = [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
    else:
        targets = list(loader.graph.leaf_nodes())
    plan = executor.migration_plan(targets)
    directions = {backwards for _migration, backwards in plan}
    if len(directions) > 1:
        raise PlanError("the plan mixes forwards and backwards migrations; split it into separate runbooks.")
    backwards = directions == {True}
    migrations = [migration_ for migration_, _ in plan]
    if not backwards:
        # _migrate_all_forwards applies in the order of the full plan.
        full_plan = executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
        chosen = set(migrations)
        migrations = [m for m, _ in full_plan if m in chosen]
    given = ".".join(part for part in (app_label, migration) if part) or None
    return Plan(database, executor, migrations, backwards, given, recorded, has_table)


def single_plan(*, database: str, app_label: str, migration: str, backwards: bool) -> Plan:
    """One migration alone, as ``sqlmigrate`` would print it, but only where it is safe.

    Forwards, the migration must be unapplied with every dependency applied;
    backwards, it must be applied with no applied dependents. Otherwise the SQL
    would be generated against a schema the database does not have.
    """
    executor, recorded, has_table = _executor(database)
    loader = executor.loader
    check_app(loader, app_label)
    key = find_migration(loader, app_label, migration)
    if key not in loader.graph.nodes:
        raise PlanError(
            f"{key[0]}.{key[1]} is replaced by a squashed migration in this database's graph; "
            "name the squash, or use 'byhand sql APP MIGRATION'."
        )
    applied = set(loader.applied_migrations)
    node = loader.graph.node_map[key]
    if not backwards:
        if key in applied:
            raise PlanError(f"{key[0]}.{key[1]} is already applied.")
        missing = sorted(f"{a}.{n}" for a, n in (p.key for p in node.parents) if (a, n) not in applied)
        if missing:
            raise PlanError(
                f"{key[0]}.{key[1]} depends on unapplied {', '.join(missing)}; "
                f"use 'byhand sql {key[0]} {key[1]}' to include them."
            )
    else:
        if key not in applied:
            raise PlanError(f"{key[0]}.{key[1]} is not applied; there is nothing to reverse.")
        dependents = sorted(f"{a}.{n}" for a, n in (c.key for c in node.children) if (a, n) in applied)
        if dependents:
            raise PlanError(
                f"applied migrations depend on {key[0]}.{key[1]}: {', '.join(dependents)}; "
                f"use 'byhand sql {key[0]} <earlier migration>' to unapply them too."
            )
    migration_ = loader.graph.nodes[key]
    return Plan(database, executor, [migration_], backwards, f"{key[0]}.{key[1]}", recorded, has_table)


# -- what the plan holds: Python, irreversible operations, Django's states ----------


def describe(operation: Operation) -> str:
    """The operation's description as sqlmigrate prints it, on one line."""
    return " ".join(str(operation.describe()).split("\n"))


def python_step_name(operation: RunPython, backwards: bool) -> str:
    if operation.__class__.__name__ == "RenameContentType":
        old, new = operation.old_model, operation.new_model  # type: ignore[attr-defined]
        if backwards:
            old, new = new, old
        return (
            f"django.contrib.contenttypes: rename content type "
            f"{operation.app_label}.{old} to {operation.app_label}.{new}"  # type: ignore[attr-defined]
        )
    code = operation.reverse_code if backwards else operation.code
    name = getattr(code, "__qualname__", None) or repr(code)
    return f"{getattr(code, '__module__', '?')}.{name}"


def is_noop(operation: RunPython, backwards: bool) -> bool:
    return (operation.reverse_code if backwards else operation.code) is RunPython.noop


def file_index(migration: Migration, index: int) -> int:
    """The operation's index in the migration file: contenttypes injects a
    RenameContentType after each RenameModel, which takes the RenameModel's index."""
    injected = sum(1 for op in migration.operations[:index] if op.__class__.__name__ == "RenameContentType")
    own = migration.operations[index].__class__.__name__ == "RenameContentType"
    return index - injected - (1 if own else 0)


def python_operations(operation: Operation) -> Iterator[RunPython]:
    if isinstance(operation, RunPython):
        yield operation
    elif isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from python_operations(inner)


def manual_steps_of(plan: Plan) -> list[str]:
    """Every RunPython the plan would need run by hand, as 'app.migration #op: path'."""
    steps = []
    for migration in plan.migrations:
        for index, operation in enumerate(migration.operations):
            for python in python_operations(operation):
                allowed = router.allow_migrate(plan.alias, migration.app_label, **python.hints)
                if allowed and not is_noop(python, plan.backwards):
                    where = f"{migration.app_label}.{migration.name} operation {file_index(migration, index)}"
                    steps.append(f"{where}: {python_step_name(python, plan.backwards)}")
    return steps


def check_reversible(plan: Plan) -> None:
    irreversible = [
        f"{migration.app_label}.{migration.name} operation {index}: {describe(operation)}"
        for migration in plan.migrations
        for index, operation in enumerate(migration.operations)
        if not operation.reversible
    ]
    if irreversible:
        raise IrreversibleMigrations(irreversible)


def inject_contenttype_renames(plan: Plan, pre_state: Callable[[], ProjectState]) -> None:
    """Do what contenttypes' pre_migrate receiver does to the plan before migrate runs it:
    a RenameContentType (a RunPython) after every RenameModel, in both directions."""
    if not apps.is_installed("django.contrib.contenttypes"):
        return
    if not any(isinstance(op, RenameModel) for m in plan.migrations for op in m.operations):
        return
    from django.contrib.contenttypes.management import inject_rename_contenttypes_operations

    pairs = [(migration, plan.backwards) for migration in plan.migrations]
    inject_rename_contenttypes_operations(plan=pairs, apps=pre_state().apps, using=plan.alias)


def project_state(plan: Plan, *, with_applied: bool) -> ProjectState:
    """The executor's own starting state (unmigrated apps, plus every applied migration)."""
    state: ProjectState = plan.executor._create_project_state(  # type: ignore[attr-defined]
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
    collection (``gc.freeze``; unless someone else froze objects already: unfreezing is
    all or nothing); collections come after GC_THRESHOLD allocations. Garbage is still
    collected, so memory stays bounded. Thresholds and frozen objects are restored
    afterwards; with the collector turned off, nothing is changed.
    """
    if not gc.isenabled():
        yield
        return
    thresholds = gc.get_threshold()
    freezing = gc.get_freeze_count() == 0
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


def states_backwards(plan: Plan) -> dict[Migration, ProjectState]:
    """Each migration's pre-state, computed as MigrationExecutor._migrate_all_backwards does."""
    executor = plan.executor
    to_run = set(plan.migrations)
    states: dict[Migration, ProjectState] = {}
    state = project_state(plan, with_applied=False)
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


def replacement_rows(plan: Plan) -> list[tuple[str, str]]:
    """Squash rows check_replacements() would write after this plan (outside the plan)."""
    recorded = set(plan.recorded)
    for migration in plan.migrations:
        rows = set(recording.records_of(migration))
        recorded = recorded - rows if plan.backwards else recorded | rows
    return sorted(
        key
        for key, migration in plan.loader.replacements.items()
        if key not in recorded and all(tuple(r) in recorded for r in migration.replaces)
    )
