"""The gateway sits below the experiments app: it imports nothing from it, and its modules import each
other without a cycle (the online and offline runners share running.py)."""

import grimp


def _graph():
    return grimp.build_graph("apps", include_external_packages=False)


def test_the_gateway_never_imports_the_experiments_app():
    graph = _graph()
    chains = graph.find_shortest_chains(importer="apps.llm", imported="apps.experiments", as_packages=True)
    assert chains == set()


def test_the_gateway_has_no_import_cycle():
    graph = _graph()
    modules = sorted(m for m in graph.find_descendants("apps.llm") if not m.startswith("apps.llm.migrations"))
    inside = set(modules)
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module) & inside:
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            assert chain is None, f"cycle: {module} -> {' -> '.join(chain)}"
