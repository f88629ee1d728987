"""An import-linter contract type (pyproject.toml, [tool.importlinter]): modules that import nothing but the
standard library, their own package and a few named packages. `forbidden` contracts cannot say "anything but"."""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class StandardLibraryOnly(Contract):
    """Each source package imports only the standard library, itself and `allowed_modules` (top-level names)."""

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        allowed = {str(name) for name in self.allowed_modules}  # type: ignore[attr-defined]
        broken: list[str] = []
        for source in self.source_modules:  # type: ignore[attr-defined]
            for module in sorted({source.name, *graph.find_descendants(source.name)}):
                for imported in sorted(graph.find_modules_directly_imported_by(module)):
                    top = imported.split(".")[0]
                    if top not in sys.stdlib_module_names and top != source.name.split(".")[0] and top not in allowed:
                        broken.append(f"{module} imports {imported}")
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["broken"]:
            output.print_error(line)
