"""Plugin manager: discovers plugins, collects their specs, and isolates their failures.

Plugins come from the entry-point group "segbench" (built-ins too), from
`--plugin MODULE` and from `SEGBENCH_PLUGINS=mod1,mod2` (a module importable from
the current folder or the environment, or the path of a .py file);
`SEGBENCH_DISABLE_PLUGINS` blocks names. A named plugin that cannot be found is an
error; a plugin that fails to import or register is recorded and reported once,
and the rest keep working. A module loaded by its entry point and named again is
registered once.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from segbench import hookspecs
from segbench.errors import SegbenchError, unknown
from segbench.specs import SPEC_TYPES, DatasetSpec, ExecutorSpec, FormatSpec, MetricSpec, ModelSpec, TrackerSpec

GROUP = "segbench"


@dataclass
class PluginInfo:
    """One plugin as `segbench plugins` shows it."""

    name: str
    source: str  # "entry point" or "module"
    distribution: str = ""
    version: str = ""
    error: str = ""


@dataclass
class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    specs: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in SPEC_TYPES})
    hook_failures: set[tuple[str, str]] = field(default_factory=set)  # (plugin, hook) already reported

    @property
    def failures(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def _get(self, kind: str, name: str) -> Any:
        try:
            return self.specs[kind][name]
        except KeyError:
            raise unknown(kind.rstrip("s"), name, self._valid_names(kind)) from None

    def _valid_names(self, kind: str) -> list[str]:
        return [f"{n}:<...>" if getattr(s, "prefix", False) else n for n, s in self.specs[kind].items()]

    def model(self, name: str) -> ModelSpec:
        """The spec serving `name`: the spec of that name ("diff-add:direct" too), else a prefix spec
        ("smp:FPN:resnet34" is served by "smp")."""
        spec = self.specs["models"].get(name)
        if spec is not None and not spec.prefix:
            return spec
        spec = self.specs["models"].get(name.split(":", 1)[0])
        if spec is not None and spec.prefix and ":" in name:
            return spec
        raise unknown("model", name, self._valid_names("models"))

    def dataset(self, name: str) -> DatasetSpec:
        return self._get("datasets", name)

    def metric(self, name: str) -> MetricSpec:
        """The spec of `name`; "nsd:2" is the variant "2" of the spec "nsd" (see MetricSpec.variants)."""
        head, _, text = name.partition(":")
        spec = self.specs["metrics"].get(head)
        if spec is not None and not text:
            return spec
        if spec is not None and spec.variants is not None:
            return spec.variants(text)
        raise unknown("metric", name, [*self.specs["metrics"], *(f"{n}:{s.variant_help}" for n, s in
                                                                self.specs["metrics"].items() if s.variants)])

    def format(self, name: str) -> FormatSpec:
        return self._get("formats", name)

    def executor(self, name: str) -> ExecutorSpec:
        return self._get("executors", name)

    def tracker(self, name: str) -> TrackerSpec:
        return self._get("trackers", name)

    def implements(self, hook: str) -> bool:
        """Whether any plugin implements `hook` (a caller may skip building its arguments)."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; a plugin that raises is reported (once per plugin and hook), not fatal."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # noqa: BLE001 - a logger must not end a run
                if (impl.plugin_name, hook) not in self.hook_failures:
                    self.hook_failures.add((impl.plugin_name, hook))
                    print(f"warning: plugin {impl.plugin_name!r} failed in {hook}: {exc}", file=sys.stderr)


def _split_env(var: str) -> list[str]:
    return [n.strip() for n in os.environ.get(var, "").split(",") if n.strip()]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _NotFound(Exception):
    """A plugin named by --plugin or SEGBENCH_PLUGINS that does not exist."""


def _is_file(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def import_named(module: str) -> ModuleType:
    """A plugin named by the user: the path of a .py file, or a module name importable from the current
    folder (which a console script does not put on sys.path) or the environment."""
    if _is_file(module):
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise _NotFound(f"plugin file {module} does not exist; give the path of a plugin's .py file, or a "
                            "module name importable from the current folder or the environment")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = loaded  # dataclasses and pickling look their module up by name
        spec.loader.exec_module(loaded)
        return loaded
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):  # a module the plugin itself imports
            raise
        raise _NotFound(f"plugin {module!r} not found: no module {exc.name!r} in the current folder ({os.getcwd()}) "
                        f"or the environment; run segbench in the folder that holds {module}.py, pass the file's "
                        f"path (--plugin path/to/{module}.py), or pip install the plugin") from None


def load_plugins(modules: Iterable[str] = (), *, entry_points_group: str = GROUP) -> Registry:
    """Load every plugin and collect what it registers.

    modules: extra importable module names (`--plugin`), added to `SEGBENCH_PLUGINS`.
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm=pm)
    disabled = set(_split_env("SEGBENCH_DISABLE_PLUGINS"))
    for name in disabled:
        pm.set_blocked(name)

    candidates: list[tuple[PluginInfo, Any]] = []
    for ep in sorted(entry_points(group=entry_points_group), key=lambda e: e.name):
        dist = ep.dist
        info = PluginInfo(ep.name, "entry point", dist.name if dist else "", dist.version if dist else "")
        candidates.append((info, ep.load))
    for module in [*_split_env("SEGBENCH_PLUGINS"), *modules]:
        name = Path(module).stem if _is_file(module) else module
        candidates.append((PluginInfo(name, "module"), lambda m=module: import_named(m)))

    for info, load in candidates:
        if info.name in disabled or pm.get_plugin(info.name) is not None:
            continue
        registry.plugins.append(info)
        try:
            plugin: ModuleType = load()
            if pm.is_registered(plugin):  # already loaded through its entry point
                registry.plugins.remove(info)
                continue
            pm.register(plugin, name=info.name)
            pm.check_pending()
        except _NotFound as exc:
            raise SegbenchError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
            info.error = _describe(exc)
            if pm.get_plugin(info.name) is not None:
                pm.unregister(name=info.name)
    for kind in SPEC_TYPES:
        _collect(registry, kind)
    return registry


def _collect(registry: Registry, kind: str) -> None:
    """Call `register_<kind>` plugin by plugin so errors and duplicates name their plugin."""
    spec_type = SPEC_TYPES[kind]
    table = registry.specs[kind]
    by_name = {p.name: p for p in registry.plugins}
    for impl in getattr(registry.pm.hook, f"register_{kind}").get_hookimpls():  # registration order
        owner = impl.plugin_name

        def register(spec: Any, _owner: str = owner) -> None:
            if not isinstance(spec, spec_type):
                raise SegbenchError(f"register_{kind} expects {spec_type.__name__}, got {type(spec).__name__}")
            previous = table.get(spec.name)
            if previous is not None:
                raise SegbenchError(
                    f"duplicate {kind.rstrip('s')} name {spec.name!r}: registered by plugin "
                    f"{previous.plugin!r} and by plugin {_owner!r}"
                )
            object.__setattr__(spec, "plugin", _owner)
            table[spec.name] = spec

        try:
            impl.function(register=register)
        except Exception as exc:  # noqa: BLE001
            info = by_name.get(owner)
            message = f"register_{kind}: {_describe(exc)}"
            if info is not None:
                info.error = f"{info.error}; {message}" if info.error else message
            else:
                registry.plugins.append(PluginInfo(owner, "module", error=message))
