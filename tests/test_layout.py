"""The package's layout holds: data flows one way, and `import semhash` stays light."""

import ast
import subprocess
import sys
from pathlib import Path

import semhash

PACKAGE = Path(semhash.__file__).parent
# The steps of the flow, in order: a module may import from its own step or an earlier one.
FLOW = [("semhash", "semhash.errors", "semhash.progress"), ("semhash.sources",), ("semhash.features",),
        ("semhash.codes",), ("semhash.models",), ("semhash.defaults", "semhash.contact_sheet"), ("semhash.modality",),
        ("semhash.index",), ("semhash.evaluation", "semhash.codemap"), ("semhash.cli", "semhash.server")]


def step(module):
    """The step of the flow that `module` belongs to: the longest prefix that names one."""
    found = [(len(prefix), number) for number, prefixes in enumerate(FLOW) for prefix in prefixes
             if module == prefix or module.startswith(prefix + ".")]
    assert found, f"{module} belongs to no step of the flow; add it to FLOW and to the README's Layout"
    return max(found)[1]


def imports(path, module):
    """The semhash modules that the file at `path` (the module `module`) imports, anywhere in it."""
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" for alias in node.names] if not node.module or node.level else [base]
            yield from (name for name in names if name.startswith("semhash"))
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("semhash"))


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_one_later_in_the_flow():
    backwards = []
    for path, module in modules():
        for imported in imports(path, module):
            target = imported if any(imported == m for _, m in modules()) else imported.rsplit(".", 1)[0]
            if step(target) > step(module):
                backwards.append(f"{module} imports {imported}")
    assert backwards == []


def test_the_readme_layout_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    missing = [str(path.relative_to(PACKAGE.parent)) for path, _ in modules()
               if path.name != "__init__.py" and path.name not in layout]
    assert missing == []


def test_import_semhash_loads_nothing_heavy():
    script = ("import sys, semhash; "
              "print(sorted(m for m in ('jieba', 'PIL', 'numpy', 'scipy', 'sklearn', 'tensorflow', 'keras', 'click') "
              "if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout == "[]\n"
