"""The package's architecture, checked on its source (ast; nothing is imported): imports flow
down the layers of DESIGN.md, no import cycle, at most a handful of deliberate function-level
imports of the package's own modules (each with a comment saying why), torch at module level
only in the tools, TensorFlow only in the data layer (and the exporters), no file over 500 lines."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "pipnet_jax"

# Layer of each module (dotted name below pipnet_jax; a package's entry covers its modules).
LAYERS = {
    0: ("errors", "files", "landmarks", "meanface", "crops", "configs", "version"),
    1: ("models", "images", "targets", "losses", "decode", "metrics", "torch_port", "parallel",
        "checkpoint", "workdir", "config_checks"),
    2: ("inference", "detection", "tracking", "export_onnx"),
    3: ("data",),
    4: ("train", "evaluate"),
    5: ("experiment", "stc", "predict", "export", "predict_video", "dry_run"),
    6: ("bench",),
    7: ("main", "cli", "__init__"),  # entry points
}
ENTRY = 7
MAX_FUNCTION_LEVEL_IMPORTS = 5  # outside the entry points
MAX_LINES = 500


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
    return ".".join(parts)


def layer_of(name: str) -> int:
    top = name.split(".")[0]
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    raise AssertionError(f"pipnet_jax.{name} has no layer: add it to LAYERS (and to DESIGN.md)")


def sources():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.AST, name: str):
    """(imported module, line, at module level?) for every import statement; module level
    includes a module-level try/if (e.g. an optional import), not a function body."""
    in_function = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function.update(id(n) for n in ast.walk(fn) if n is not fn)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) not in in_function
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")[:-node.level + (1 if name.endswith("__init__") else 0)] or []
                module = ".".join(["pipnet_jax", *base, node.module or ""]).rstrip(".")
            else:
                module = node.module or ""
            for alias in node.names:  # `from pipnet_jax import train` imports a module
                yield (f"{module}.{alias.name}" if module == "pipnet_jax" else module), node.lineno, \
                    id(node) not in in_function


def package_target(module: str, known) -> str | None:
    """The pipnet_jax module an import names (longest known prefix), else None."""
    if not module.startswith("pipnet_jax"):
        return None
    parts = module.split(".")[1:]
    while parts:
        if ".".join(parts) in known:
            return ".".join(parts)
        parts = parts[:-1]
    return "__init__"


@pytest.fixture(scope="module")
def graph():
    files = sources()
    edges = {}
    for name, path in files.items():
        text = path.read_text()
        lines = text.splitlines()
        edges[name] = [(package_target(m, files), m, line, top, lines[line - 1])
                       for m, line, top in imports(ast.parse(text), name)]
    return files, edges


def test_imports_flow_down(graph):
    files, edges = graph
    wrong = []
    for name, found in edges.items():
        for target, module, line, _, _ in found:
            if target is None or target == name or target == "__init__" and name == "__init__":
                continue
            if layer_of(target) > layer_of(name):
                wrong.append(f"pipnet_jax/{files[name].relative_to(PACKAGE)}:{line} (L{layer_of(name)}) "
                             f"imports {module} (L{layer_of(target)})")
            # the data layer reads files with L0's help only; training and evaluation get their
            # data handed down (no TensorFlow under them)
            if layer_of(name) == 3 and layer_of(target) not in (0, 3):
                wrong.append(f"pipnet_jax/{files[name].relative_to(PACKAGE)}:{line}: data imports {module}")
            if layer_of(name) == 4 and layer_of(target) == 3:
                wrong.append(f"pipnet_jax/{files[name].relative_to(PACKAGE)}:{line}: L4 imports data ({module})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle(graph):
    _, edges = graph
    succ = {n: sorted({t for t, *_ in found if t and t != n and t != "__init__"})
            for n, found in edges.items()}
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in succ.get(n, []):
            if state.get(m) == "open":
                cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(succ):
        if n not in state:
            visit(n)
    assert not cycles, "\n".join(cycles)


def test_function_level_imports_are_few_and_explained(graph):
    files, edges = graph
    lazy = []
    for name, found in edges.items():
        if layer_of(name) == ENTRY:
            continue
        lines = files[name].read_text().splitlines()
        for target, module, line, top, text in found:
            if target is None or top:
                continue
            # the reason sits on the import's line or in a comment at most 3 lines above
            above = [lines[k].strip() for k in range(max(0, line - 4), line - 1)]
            explained = "#" in text or any(a.startswith("#") for a in above)
            lazy.append((f"pipnet_jax/{files[name].relative_to(PACKAGE)}:{line}: {module}", explained))
    unexplained = [where for where, ok in lazy if not ok]
    assert not unexplained, "function-level imports without a comment saying why:\n" + "\n".join(unexplained)
    assert len(lazy) <= MAX_FUNCTION_LEVEL_IMPORTS, "\n".join(where for where, _ in lazy)


def test_torch_only_in_the_tools_and_tensorflow_only_in_data(graph):
    files, edges = graph
    wrong = []
    for name, found in edges.items():
        for _, module, line, top, _ in found:
            root = module.split(".")[0]
            where = f"pipnet_jax/{files[name].relative_to(PACKAGE)}:{line}"
            if root == "torch" and top and layer_of(name) != 6:
                wrong.append(f"{where}: torch at module level outside pipnet_jax/bench/")
            if root in ("tensorflow", "tensorflow_datasets") and top and layer_of(name) not in (3, 6):
                wrong.append(f"{where}: {root} at module level outside pipnet_jax/data/ and the tools")
    assert not wrong, "\n".join(wrong)


def test_no_file_over_500_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_inference_training_and_export_import_without_tensorflow_or_torch():
    """What DESIGN.md promises in a fresh interpreter: the Predictor, prediction, the train
    step and loop, evaluation and the exporters load neither TensorFlow nor torch."""
    import subprocess
    import sys

    code = ("import sys; import pipnet_jax.inference, pipnet_jax.predict, pipnet_jax.train, "
            "pipnet_jax.evaluate, pipnet_jax.export, pipnet_jax.workdir; "
            "print(sorted(m for m in ('tensorflow', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
