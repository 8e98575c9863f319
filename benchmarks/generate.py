#!/usr/bin/env python
"""Write a generated Django project with many migrations, for byhand's benchmark.

    python benchmarks/generate.py [DIR] [--seed 42] [--apps 5] [--migrations 520]

DIR (default: benchmarks/generated/, git-ignored) receives manage.py, the
``benchproject`` settings package and APPS apps (alpha, bravo, ...), whose
migrations add up to MIGRATIONS. The output depends on the seed only: the same
arguments write the same files, byte for byte, whatever Django runs it.

The migrations mix the operations a long-lived project accumulates: CreateModel
(with foreign keys inside the app, across apps with the dependency they need, and
to settings.AUTH_USER_MODEL), AddField, AlterField, RenameField, RemoveField,
AddIndex, RemoveIndex, AddConstraint (UniqueConstraint and CheckConstraint),
RemoveConstraint, AlterUniqueTogether, RunSQL (plain SQL every vendor runs, with
and without parameters), RunPython.noop, and a few real RunPython functions
(which ``byhand sql`` writes as manual steps: pass --manual-steps). Each app's
models.py is the state its migrations end in, so ``makemigrations --check``
finds nothing to do.

CheckConstraint's ``check=`` became ``condition=`` in Django 5.1: the generated
files choose the keyword by django.VERSION when they are imported, so one
generated project runs on Django 4.2 and 5.2 alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Project", "generate", "main"]

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "generated"
MARKER = ".byhand-benchmark"
APP_NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
USER_MODEL = "settings.AUTH_USER_MODEL"
PRIMARY_KEY = 'models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")'

#: Field kinds, the word their names start with, and whether they may be indexed
#: or be part of a unique constraint (MySQL cannot index TEXT without a prefix length).
KIND_WORDS = {
    "char": "title",
    "int": "amount",
    "bigint": "amount",
    "bool": "flag",
    "text": "note",
    "datetime": "stamp",
    "decimal": "price",
    "fk": "ref",
}
INDEXABLE = {"char", "int", "bigint", "bool", "datetime", "decimal", "fk"}
NUMERIC = {"int", "bigint", "decimal"}

#: How often each operation is chosen (an operation whose preconditions fail is redrawn).
OPERATION_WEIGHTS = {
    "create_model": 12,
    "add_field": 20,
    "alter_field": 14,
    "rename_field": 8,
    "remove_field": 6,
    "add_index": 8,
    "remove_index": 2,
    "add_unique": 5,
    "add_check": 5,
    "remove_constraint": 2,
    "alter_unique_together": 4,
    "run_sql": 6,
    "run_python_noop": 5,
    "run_python": 1,
}
#: At most this many real RunPython functions per app (each one is a manual step).
MAX_REAL_PYTHON_PER_APP = 2


@dataclass
class Field:
    name: str
    kind: str
    max_length: int = 0
    max_digits: int = 0
    default_true: bool = False
    null: bool = False
    db_index: bool = False
    target: str = ""  # "app.model" (lower case) or USER_MODEL
    set_null: bool = False

    def render(self) -> str:
        """The field as makemigrations would write it (keyword arguments, sorted)."""
        if self.kind == "char":
            return f'models.CharField(default="", max_length={self.max_length})'
        if self.kind == "int":
            return "models.IntegerField(default=0)"
        if self.kind == "bigint":
            return "models.BigIntegerField(default=0)"
        if self.kind == "bool":
            return f"models.BooleanField(default={self.default_true})"
        if self.kind == "text":
            null = ", null=True" if self.null else ""
            return f'models.TextField(blank=True, default=""{null})'
        if self.kind == "datetime":
            index = "db_index=True, " if self.db_index else ""
            return f"models.DateTimeField({index}null=True)"
        if self.kind == "decimal":
            return f"models.DecimalField(decimal_places=2, default=0, max_digits={self.max_digits})"
        if self.kind == "fk":
            on_delete = "models.SET_NULL" if self.set_null else "models.CASCADE"
            to = USER_MODEL if self.target == USER_MODEL else f'"{self.target}"'
            return f'models.ForeignKey(null=True, on_delete={on_delete}, related_name="+", to={to})'
        raise AssertionError(self.kind)

    def copy(self, **changes: Any) -> Field:
        return dataclasses.replace(self, **changes)


@dataclass
class Model:
    name: str  # class name, e.g. Item3
    fields: dict[str, Field] = field(default_factory=dict)
    indexes: dict[str, list[str]] = field(default_factory=dict)
    uniques: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    unique_together: list[tuple[str, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.name.lower()

    def locked(self) -> set[str]:
        """Fields that indexes and constraints name: never altered, renamed or removed."""
        names = {f for fields in self.indexes.values() for f in fields}
        names |= {f for fields in self.uniques.values() for f in fields}
        names |= set(self.checks.values())
        names |= {f for pair in self.unique_together for f in pair}
        return names

    def free(self, kinds: set[str] | None = None) -> list[str]:
        locked = self.locked()
        return [n for n, f in self.fields.items() if n not in locked and (kinds is None or f.kind in kinds)]

    def of_kind(self, kinds: set[str]) -> list[str]:
        return [n for n, f in self.fields.items() if f.kind in kinds]


@dataclass
class App:
    label: str
    models: dict[str, Model] = field(default_factory=dict)
    migrations: list[str] = field(default_factory=list)
    created_in: dict[str, str] = field(default_factory=dict)  # model key -> migration name
    counter: int = 0
    real_python: int = 0

    def next_number(self) -> int:
        self.counter += 1
        return self.counter

    @property
    def short(self) -> str:
        return self.label[:3]


@dataclass
class Written:
    """One operation's code and what its migration needs for it."""

    code: str
    slug: str
    dependencies: set[tuple[str, str]] = field(default_factory=set)
    swappable: bool = False
    condition: bool = False
    functions: list[str] = field(default_factory=list)


class Project:
    """The evolving state of every app, and the migration files written so far."""

    def __init__(self, seed: int, app_count: int, migration_count: int) -> None:
        if not 1 <= app_count <= len(APP_NAMES):
            raise ValueError(f"--apps must be between 1 and {len(APP_NAMES)}")
        if migration_count < app_count:
            raise ValueError("--migrations must be at least --apps")
        self.rng = random.Random(seed)
        self.seed = seed
        self.apps = [App(label) for label in APP_NAMES[:app_count]]
        self.migration_count = migration_count
        self.files: dict[str, str] = {}  # relative path -> text
        self.model_count = 0
        self.operation_count: dict[str, int] = {name: 0 for name in OPERATION_WEIGHTS}
        # Models that exist before the migration being written: (app, model key).
        self.existing: list[tuple[App, str]] = []

    # -- naming -----------------------------------------------------------------------

    def field_name(self, app: App, kind: str) -> str:
        return f"{KIND_WORDS[kind]}_{app.next_number()}"

    def new_field(self, app: App, kind: str | None = None) -> Field:
        rng = self.rng
        kind = (
            kind
            or rng.choices(["char", "int", "bool", "text", "datetime", "decimal", "fk"], weights=[5, 4, 2, 2, 2, 2, 3])[
                0
            ]
        )
        name = self.field_name(app, kind)
        if kind == "char":
            return Field(name, kind, max_length=rng.choice([20, 40, 80, 120, 200]))
        if kind == "bool":
            return Field(name, kind, default_true=rng.random() < 0.3)
        if kind == "text":
            return Field(name, kind, null=rng.random() < 0.3)
        if kind == "datetime":
            return Field(name, kind, db_index=rng.random() < 0.3)
        if kind == "decimal":
            return Field(name, kind, max_digits=rng.choice([8, 10, 12]))
        if kind == "fk":
            return Field(name, kind, target=self.fk_target(app), set_null=rng.random() < 0.3)
        return Field(name, kind)

    def fk_target(self, app: App) -> str:
        rng = self.rng
        own = [(a, m) for a, m in self.existing if a is app]
        other = [(a, m) for a, m in self.existing if a is not app]
        roll = rng.random()
        if roll < 0.08 or not (own or other):
            return USER_MODEL
        pool = other if (roll < 0.55 and other) or not own else own
        target_app, model = rng.choice(pool)
        return f"{target_app.label}.{model}"

    def dependencies_of(self, app: App, fields: list[Field]) -> tuple[set[tuple[str, str]], bool]:
        dependencies: set[tuple[str, str]] = set()
        swappable = False
        for f in fields:
            if f.kind != "fk":
                continue
            if f.target == USER_MODEL:
                swappable = True
                continue
            label, model = f.target.split(".")
            if label != app.label:
                owner = next(a for a in self.apps if a.label == label)
                dependencies.add((label, owner.created_in[model]))
        return dependencies, swappable

    # -- operations -------------------------------------------------------------------

    def pick_model(self, app: App) -> Model | None:
        models = [app.models[m] for a, m in self.existing if a is app]
        return self.rng.choice(models) if models else None

    def create_model(self, app: App, migration: str) -> Written:
        rng = self.rng
        self.model_count += 1
        model = Model(f"Item{self.model_count}")
        fields = [self.new_field(app) for _ in range(rng.randint(2, 5))]
        model.fields = {f.name: f for f in fields}
        app.models[model.key] = model
        app.created_in[model.key] = migration
        lines = [
            "migrations.CreateModel(",
            f'    name="{model.name}",',
            "    fields=[",
            f'        ("id", {PRIMARY_KEY}),',
            *(f'        ("{f.name}", {f.render()}),' for f in fields),
            "    ],",
            ")",
        ]
        dependencies, swappable = self.dependencies_of(app, fields)
        return Written("\n".join(lines), f"create_{model.key}", dependencies, swappable)

    def add_field(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None:
            return None
        f = self.new_field(app)
        model.fields[f.name] = f
        dependencies, swappable = self.dependencies_of(app, [f])
        code = f'migrations.AddField(model_name="{model.key}", name="{f.name}", field={f.render()})'
        return Written(code, f"{model.key}_{f.name}", dependencies, swappable)

    def alter_field(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or not model.free():
            return None
        name = self.rng.choice(model.free())
        old = model.fields[name]
        if old.kind == "char":
            new = old.copy(max_length=old.max_length + 20 if old.max_length + 20 <= 255 else 64)
        elif old.kind == "int":
            new = old.copy(kind="bigint")
        elif old.kind == "bigint":
            new = old.copy(kind="int")
        elif old.kind == "bool":
            new = old.copy(default_true=not old.default_true)
        elif old.kind == "text":
            new = old.copy(null=not old.null)
        elif old.kind == "datetime":
            new = old.copy(db_index=not old.db_index)
        elif old.kind == "decimal":
            new = old.copy(max_digits=old.max_digits + 2 if old.max_digits < 18 else 10)
        else:
            new = old.copy(set_null=not old.set_null)
        model.fields[name] = new
        dependencies, swappable = self.dependencies_of(app, [new])
        code = f'migrations.AlterField(model_name="{model.key}", name="{name}", field={new.render()})'
        return Written(code, f"alter_{model.key}_{name}", dependencies, swappable)

    def rename_field(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or not model.free():
            return None
        old = self.rng.choice(model.free())
        f = model.fields.pop(old)
        f = f.copy(name=self.field_name(app, f.kind))
        model.fields[f.name] = f
        code = f'migrations.RenameField(model_name="{model.key}", old_name="{old}", new_name="{f.name}")'
        return Written(code, f"rename_{model.key}_{old}_{f.name}")

    def remove_field(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or len(model.free()) < 2:
            return None
        name = self.rng.choice(model.free())
        del model.fields[name]
        return Written(f'migrations.RemoveField(model_name="{model.key}", name="{name}")', f"remove_{model.key}_{name}")

    def add_index(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or not model.of_kind(INDEXABLE):
            return None
        candidates = model.of_kind(INDEXABLE)
        fields = self.rng.sample(candidates, min(len(candidates), self.rng.choice([1, 1, 2])))
        name = f"{app.short}_ix{app.next_number()}"
        model.indexes[name] = fields
        index = f"models.Index(fields={fields!r}, name={name!r})".replace("'", '"')
        return Written(f'migrations.AddIndex(model_name="{model.key}", index={index})', f"{model.key}_{name}")

    def remove_index(self, app: App) -> Written | None:
        models = [app.models[m] for a, m in self.existing if a is app and app.models[m].indexes]
        if not models:
            return None
        model = self.rng.choice(models)
        name = self.rng.choice(sorted(model.indexes))
        del model.indexes[name]
        return Written(f'migrations.RemoveIndex(model_name="{model.key}", name="{name}")', f"remove_{name}")

    def add_unique(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or len(model.of_kind(INDEXABLE)) < 2:
            return None
        fields = self.rng.sample(model.of_kind(INDEXABLE), 2)
        name = f"{app.short}_uq{app.next_number()}"
        model.uniques[name] = fields
        constraint = f"models.UniqueConstraint(fields={fields!r}, name={name!r})".replace("'", '"')
        code = f'migrations.AddConstraint(model_name="{model.key}", constraint={constraint})'
        return Written(code, f"{model.key}_{name}")

    def add_check(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or not model.of_kind(NUMERIC):
            return None
        column = self.rng.choice(model.of_kind(NUMERIC))
        name = f"{app.short}_ck{app.next_number()}"
        model.checks[name] = column
        constraint = f'models.CheckConstraint(name="{name}", **{{_CONDITION: models.Q({column}__gte=0)}})'
        code = f'migrations.AddConstraint(model_name="{model.key}", constraint={constraint})'
        return Written(code, f"{model.key}_{name}", condition=True)

    def remove_constraint(self, app: App) -> Written | None:
        models = [
            app.models[m] for a, m in self.existing if a is app and (app.models[m].uniques or app.models[m].checks)
        ]
        if not models:
            return None
        model = self.rng.choice(models)
        name = self.rng.choice(sorted([*model.uniques, *model.checks]))
        model.uniques.pop(name, None)
        model.checks.pop(name, None)
        code = f'migrations.RemoveConstraint(model_name="{model.key}", name="{name}")'
        return Written(code, f"remove_{name}")

    def alter_unique_together(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None:
            return None
        candidates = model.of_kind(INDEXABLE)
        if model.unique_together and (self.rng.random() < 0.4 or len(candidates) < 2):
            model.unique_together = []
        elif len(candidates) >= 2:
            first, second = self.rng.sample(candidates, 2)
            model.unique_together = [(first, second)]
        else:
            return None
        value = "{" + ", ".join(f'("{a}", "{b}")' for a, b in model.unique_together) + "}"
        value = value if model.unique_together else "set()"
        code = f'migrations.AlterUniqueTogether(name="{model.key}", unique_together={value})'
        return Written(code, f"{model.key}_unique_together")

    def run_sql(self, app: App) -> Written | None:
        models = [app.models[m] for a, m in self.existing if a is app and app.models[m].of_kind(NUMERIC)]
        if not models:
            return None
        model = self.rng.choice(models)
        column = self.rng.choice(model.of_kind(NUMERIC))
        table = f"{app.label}_{model.key}"
        if self.rng.random() < 0.5:
            code = (
                f'migrations.RunSQL("UPDATE {table} SET {column} = 0 WHERE {column} < 0", '
                f'reverse_sql="UPDATE {table} SET {column} = 0 WHERE {column} < -1")'
            )
        else:
            code = (
                f'migrations.RunSQL([("UPDATE {table} SET {column} = %s WHERE {column} < %s", [0, 0])], '
                "reverse_sql=migrations.RunSQL.noop)"
            )
        return Written(code, f"{model.key}_sql")

    def run_python_noop(self, app: App) -> Written | None:
        return Written("migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)", "noop")

    def run_python(self, app: App) -> Written | None:
        model = self.pick_model(app)
        if model is None or app.real_python >= MAX_REAL_PYTHON_PER_APP:
            return None
        app.real_python += 1
        function = f"count_{model.key}_{app.next_number()}"
        code = (
            f"def {function}(apps, schema_editor):\n"
            f'    model = apps.get_model("{app.label}", "{model.key}")\n'
            "    model.objects.using(schema_editor.connection.alias).filter(pk__gt=0).count()\n"
        )
        return Written(f"migrations.RunPython({function}, migrations.RunPython.noop)", function, functions=[code])

    # -- migrations -------------------------------------------------------------------

    def write_migration(self, app: App) -> None:
        rng = self.rng
        number = len(app.migrations) + 1
        if number == 1:
            name = "0001_initial"
            written = [self.create_model(app, name), self.create_model(app, name)]
            self.operation_count["create_model"] += 2
        else:
            written = []
            provisional = f"{number:04d}"
            for _ in range(rng.choices([1, 2, 3], weights=[50, 35, 15])[0]):
                for _attempt in range(50):
                    kind = rng.choices(list(OPERATION_WEIGHTS), weights=list(OPERATION_WEIGHTS.values()))[0]
                    if kind == "create_model":
                        result: Written | None = self.create_model(app, provisional)
                    else:
                        result = getattr(self, kind)(app)
                    if result is not None:
                        self.operation_count[kind] += 1
                        written.append(result)
                        break
            slug = written[0].slug + ("_and_more" if len(written) > 1 else "")
            name = f"{number:04d}_{slug}"[:60].rstrip("_")
            for model_key, created in app.created_in.items():
                if created == provisional:
                    app.created_in[model_key] = name
        dependencies = {(app.label, app.migrations[-1])} if app.migrations else set()
        for w in written:
            dependencies |= w.dependencies
        swappable = any(w.swappable for w in written)
        self.files[f"{app.label}/migrations/{name}.py"] = render_migration(
            seed=self.seed, written=written, dependencies=dependencies, swappable=swappable
        )
        app.migrations.append(name)
        self.existing.extend((app, key) for key in app.models if (app, key) not in self.existing)

    def build(self) -> None:
        order = [self.apps[i % len(self.apps)] for i in range(self.migration_count)]
        # Deterministic interleaving: each app's first migration early, the rest shuffled.
        head, tail = order[: len(self.apps)], order[len(self.apps) :]
        self.rng.shuffle(tail)
        for app in head + tail:
            self.write_migration(app)
        for app in self.apps:
            self.files[f"{app.label}/__init__.py"] = ""
            self.files[f"{app.label}/migrations/__init__.py"] = ""
            self.files[f"{app.label}/models.py"] = render_models(app, self.seed)
        self.files["benchproject/__init__.py"] = ""
        self.files["benchproject/settings.py"] = render_settings([a.label for a in self.apps], self.seed)
        self.files["manage.py"] = MANAGE_PY
        self.files[MARKER] = f"seed={self.seed} apps={len(self.apps)} migrations={self.migration_count}\n"


def render_migration(*, seed: int, written: list[Written], dependencies: set[tuple[str, str]], swappable: bool) -> str:
    condition = any(w.condition for w in written)
    lines = [f"# Generated by benchmarks/generate.py (seed {seed}); do not edit.", ""]
    if condition:
        lines.append("import django")
    if swappable:
        lines.append("from django.conf import settings")
    lines += ["from django.db import migrations, models", ""]
    if condition:
        lines += [
            "# CheckConstraint(check=...) became condition= in Django 5.1.",
            '_CONDITION = "condition" if django.VERSION >= (5, 1) else "check"',
            "",
        ]
    for w in written:
        for function in w.functions:
            lines += ["", function]
    lines += ["", "class Migration(migrations.Migration):", "    dependencies = ["]
    if swappable:
        lines.append("        migrations.swappable_dependency(settings.AUTH_USER_MODEL),")
    lines += [f'        ("{a}", "{n}"),' for a, n in sorted(dependencies)]
    lines += ["    ]", "    operations = ["]
    for w in written:
        body = w.code.split("\n")
        lines += [f"        {line}" for line in body[:-1]]
        lines.append(f"        {body[-1]},")
    lines += ["    ]", ""]
    return "\n".join(lines)


def render_models(app: App, seed: int) -> str:
    lines = [
        f'"""The state the {app.label} migrations end in (generated by benchmarks/generate.py, seed {seed})."""',
        "",
        "from __future__ import annotations",
        "",
        "import django",
        "from django.conf import settings",
        "from django.db import models",
        "",
        '_CONDITION = "condition" if django.VERSION >= (5, 1) else "check"',
    ]
    for model in app.models.values():
        lines += ["", "", f"class {model.name}(models.Model):"]
        lines += [f"    {f.name} = {f.render()}" for f in model.fields.values()]
        meta = []
        if model.indexes:
            meta.append("        indexes = [")
            meta += [
                f"            models.Index(fields={fields!r}, name={name!r}),".replace("'", '"')
                for name, fields in model.indexes.items()
            ]
            meta.append("        ]")
        if model.uniques or model.checks:
            meta.append("        constraints = [")
            meta += [
                f"            models.UniqueConstraint(fields={fields!r}, name={name!r}),".replace("'", '"')
                for name, fields in model.uniques.items()
            ]
            meta += [
                f'            models.CheckConstraint(name="{name}", **{{_CONDITION: models.Q({column}__gte=0)}}),'
                for name, column in model.checks.items()
            ]
            meta.append("        ]")
        if model.unique_together:
            pairs = ", ".join(f'("{a}", "{b}")' for a, b in model.unique_together)
            meta.append(f"        unique_together = [{pairs}]")
        if meta:
            lines += ["", "    class Meta:", *meta]
        elif not model.fields:
            lines.append("    pass")
    lines.append("")
    return "\n".join(lines)


def render_settings(labels: list[str], seed: int) -> str:
    apps = "".join(f'    "{label}",\n' for label in labels)
    return f'''"""Settings of the generated benchmark project (benchmarks/generate.py, seed {seed}).

SQLite by default (db.sqlite3 beside manage.py); DATABASE_URL=postgres://... or
mysql://... switches vendor, as in example/exampleproject/settings.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "byhand",
{apps}]


def database_from_url(url: str) -> dict[str, object]:
    """A DATABASES entry from postgres://, mysql:// or sqlite:/// URLs."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("//") else parts.path)
        return {{"ENGINE": "django.db.backends.sqlite3", "NAME": path}}
    engine = {{"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql"}}[parts.scheme]
    return {{
        "ENGINE": f"django.db.backends.{{engine}}",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }}


DATABASES = {{"default": database_from_url(os.environ.get("DATABASE_URL") or f"sqlite:///{{BASE_DIR / 'db.sqlite3'}}")}}
'''


MANAGE_PY = '''#!/usr/bin/env python
"""manage.py of the generated benchmark project."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''


def generate(directory: Path, *, seed: int, app_count: int, migration_count: int) -> Project:
    """Write the project into ``directory`` (replacing a previous generated project there)."""
    project = Project(seed, app_count, migration_count)
    project.build()
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise SystemExit(f"{directory} is not empty and was not written by generate.py; refusing to overwrite it.")
        for child in directory.iterdir():
            if child.is_dir() and (child.name in APP_NAMES or child.name == "benchproject"):
                shutil.rmtree(child)
            elif child.name in ("manage.py", MARKER):
                child.unlink()
    for relative, text in sorted(project.files.items()):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "directory", nargs="?", type=Path, default=DEFAULT_DIR, help="where to write (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    parser.add_argument("--apps", type=int, default=5, help="number of apps (default: %(default)s)")
    parser.add_argument("--migrations", type=int, default=520, help="migrations over all apps (default: %(default)s)")
    args = parser.parse_args(argv)
    project = generate(args.directory, seed=args.seed, app_count=args.apps, migration_count=args.migrations)
    operations = sum(project.operation_count.values())
    print(
        f"Wrote {args.directory}: {len(project.apps)} apps, {project.migration_count} migrations, "
        f"{operations} operations, {project.model_count} models (seed {args.seed})."
    )
    print("Operations: " + ", ".join(f"{k} {v}" for k, v in project.operation_count.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
