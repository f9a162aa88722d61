"""Imports go one way, down the layers of the README's Layout, and never in a circle.

Every first-party module is parsed, imports inside functions included (a function-local import
is still a dependency, and hiding one there is how cycles and upward imports creep back in).
Strings that name modules (settings, `import_string`, URL includes) are not imports here.
"""

import ast
import os
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top-level packages and modules by layer, highest first. A module may import its own package and
# any lower layer; nothing imports a higher one.
LAYERS = {
    "project shell": ("presetsite",),
    "feature apps": ("downloads", "templates_scan", "realtime", "disk"),
    "catalogue": ("presets",),
    "ground": ("accounts", "storage"),
}

# Apps of one layer stay out of each other, except these, each for its reason.
SIDEWAYS = {
    ("templates_scan", "downloads"): "Install missing queues presets and shows how their downloads go",
    ("downloads", "realtime"): "the queue publishes its changes to the browsers",
    ("disk", "downloads"): "uninstall and clean-up leave alone what a download job holds",
    ("disk", "realtime"): "open storage pages hear of what changed on the disk",
}

# Plain Python, no Django: they import only each other and no Django-based package.
PLAIN_PYTHON = (
    "storage",
    "downloads.engine",
    "downloads.probe",
    "downloads.ranges",
    "downloads.sources",
    "templates_scan.scanner",
    "templates_scan.loaders",
    "presets.catalogue",
    "presets.sizes",
)
DJANGO_BASED = ("django", "channels", "channels_redis", "daphne", "django_q", "whitenoise")

# Above the app, using all of it and each other; nothing of the app imports them.
TOOLS = ("tests", "bench", "scripts", "manage")

LAYER_OF = {package: rank for rank, packages in enumerate(LAYERS.values()) for package in packages}
LAYER_OF.update(dict.fromkeys(TOOLS, -1))
LAYER_NAME = {-1: "tools", **dict(enumerate(LAYERS))}


def first_party_files():
    """{module name: path} of every Python file of the project (not .venv, .git, data/...)."""
    modules = {}
    for folder, subfolders, files in os.walk(ROOT):
        folder = Path(folder).relative_to(ROOT)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "__")) and folder / d != Path("data"))
        for name in sorted(f for f in files if f.endswith(".py")):
            parts = [*folder.parts, name.removesuffix(".py")]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = folder / name
    return modules


MODULES = first_party_files()


def imported_names(module, tree):
    """(line, dotted name) of each import in the module, anywhere in it; `from a import b` gives
    a.b, which is the module a.b if there is one, else a name in a."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, or one a level up for each extra dot
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def first_party(name):
    """The first-party module a dotted name is in (its longest prefix that is one), or None."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def all_imports():
    """[(importer, line, dotted name)] for every import of every first-party module."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse((ROOT / path).read_text(), filename=str(path))
        found += [(module, line, name) for line, name in imported_names(module, tree)]
    return found


IMPORTS = all_imports()
# [(importer, line, imported module)] for the first-party imports, each once.
EDGES = sorted(
    {(module, line, first_party(name)) for module, line, name in IMPORTS if first_party(name) not in (None, module)}
)


def top(module):
    return module.split(".")[0]


def where(module, line):
    return f"{MODULES[module]}:{line}: {module}"


def test_every_package_is_in_a_layer():
    unplaced = sorted({top(module) for module in MODULES} - set(LAYER_OF))
    assert not unplaced, f"not in any layer: {unplaced}; add them to LAYERS or TOOLS here and to the README's Layout"


def test_imports_go_down_the_layers():
    wrong = []
    for importer, line, imported in EDGES:
        a, b = top(importer), top(imported)
        if a == b or a not in LAYER_OF or b not in LAYER_OF:  # the unplaced fail the test above
            continue
        if LAYER_OF[b] < LAYER_OF[a]:
            wrong.append(
                f"{where(importer, line)} ({LAYER_NAME[LAYER_OF[a]]}) imports {imported} "
                f"({LAYER_NAME[LAYER_OF[b]]}), a layer above it"
            )
        elif LAYER_OF[b] == LAYER_OF[a] and a not in TOOLS and (a, b) not in SIDEWAYS:
            wrong.append(
                f"{where(importer, line)} imports {imported}, another app of its layer, not listed in SIDEWAYS"
            )
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles():
    cycles = [describe_cycle(component) for component in strongly_connected(EDGES) if len(component) > 1]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_plain_python_modules_import_no_django():
    plain = {module for module in MODULES if any(module == p or module.startswith(p + ".") for p in PLAIN_PYTHON)}
    wrong = []
    for module, line, name in IMPORTS:
        if module not in plain:
            continue
        target = first_party(name)
        if target is None and top(name) in DJANGO_BASED:
            wrong.append(f"{where(module, line)} imports {name}")
        elif target and target not in plain:
            wrong.append(f"{where(module, line)} imports {target}, which is not plain Python")
    assert not wrong, "plain-Python modules that depend on Django:\n" + "\n".join(wrong)


def strongly_connected(edges):
    """Tarjan's strongly connected components of the module graph: a component of more than one
    module is a set of modules that import each other, around one or more cycles."""
    graph = defaultdict(set)
    for importer, _, imported in edges:
        graph[importer].add(imported)
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            components.append(component)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return components


def describe_cycle(component):
    """One shortest cycle through the component's first module, each step with its import line."""
    start = min(component)
    steps = {(importer, imported): line for importer, line, imported in reversed(EDGES)}
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for (importer, imported), _ in sorted(steps.items()):
            if importer != path[-1] or imported not in component:
                continue
            if imported == start:
                cycle = [*path, start]
                return "; ".join(f"{where(a, steps[a, b])} imports {b}" for a, b in pairwise(cycle))
            if imported not in seen:
                seen.add(imported)
                paths.append([*path, imported])
    raise AssertionError(f"no cycle found in {sorted(component)}")
