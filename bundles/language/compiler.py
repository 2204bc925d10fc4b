"""Compile a bundle's content once into what execution needs: entities, policies, templates, pipelines.

A compiled bundle is immutable and content-addressed, so one cache keyed by digest (`compiled`) serves every
caller in the process: suites, quality gates and the runtime.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, Template, TemplateSyntaxError

from bundles.language.archive import YAML_SUFFIXES
from bundles.language.budget import close_budget, open_budget, refuse_over_cap
from bundles.language.digest import bundle_digest
from bundles.language.documents import MANIFEST_FILE
from bundles.language.errors import BundleCompileError
from bundles.language.fields import NOT_A_MAPPING, Entity, compile_entity
from bundles.language.templating import template_environment
from policies import Policy, PolicyError, compile_policy

MANIFEST_PATH = MANIFEST_FILE
# Text without any of these renders to itself (no line statements are configured).
JINJA_MARKERS = ("{{", "{%", "{#")
BUNDLE_CACHE_SIZE = 64

# Compile errors.
MISSING_MANIFEST = "the bundle has no bundle.yaml mapping"
MISSING_KEY = "missing `{key}`"
NOT_A_LIST = "`{key}` must be a list"
DUPLICATE_NAME = "duplicate {kind} name {name!r}"
UNKNOWN_REFERENCE = "pipeline {pipeline!r} refers to unknown {kind} {name!r}"
BAD_TEMPLATE = "template {template!r} does not compile: line {line}: {reason}"
BAD_POLICY = "policy does not compile: {reason}"
UNKNOWN_PIPELINE = "bundle {bundle} has no pipeline {pipeline!r}"


class UnknownPipelineError(LookupError):
    """The requested pipeline is not defined by the bundle."""


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """A prompt template compiled once in the sandbox: system and prompt."""

    name: str
    system: Template | str
    prompt: Template | str

    def render(self, input: Mapping[str, Any]) -> tuple[str, str]:
        """Return the rendered (system, prompt) for `input`; raise whatever the sandbox raises."""
        variables = {"input": input}
        token = open_budget()  # one budget: system and prompt share the caps
        try:
            system = self.system if type(self.system) is str else self.system.render(variables)
            prompt = self.prompt if type(self.prompt) is str else self.prompt.render(variables)
        finally:
            close_budget(token)
        refuse_over_cap(len(system) + len(prompt), "the system and prompt together")
        return system, prompt


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A pipeline resolved against its bundle: entities, template, model params, policies by stage."""

    name: str
    input: Entity
    output: Entity
    template: CompiledTemplate
    model: dict[str, Any]
    policies: tuple[str, ...]
    pre: tuple[Policy, ...]
    post: tuple[Policy, ...]
    # The documented exception to "records keep hashes, not payloads" (DESIGN §9).
    store_payload: bool = False


@dataclass(frozen=True, slots=True)
class CompiledBundle:
    """A bundle's content indexed and compiled once: entities, policies, templates, pipelines, suites."""

    name: str
    version: str
    digest: str
    content: Mapping[str, Any]
    entities: dict[str, Entity]
    policies: dict[str, Policy]
    templates: dict[str, CompiledTemplate]
    pipelines: dict[str, Pipeline]
    suites: tuple[tuple[str, Any], ...]

    @property
    def identity(self) -> dict[str, str]:
        """Return {name, version, digest}: the `bundle` variable of policies and decisions."""
        return {"name": self.name, "version": self.version, "digest": self.digest}

    def pipeline(self, name: str) -> Pipeline:
        """Return the named pipeline; raise UnknownPipelineError."""
        try:
            return self.pipelines[name]
        except (KeyError, TypeError):
            raise UnknownPipelineError(UNKNOWN_PIPELINE.format(bundle=self.name, pipeline=name)) from None


_BUNDLE_CACHE: OrderedDict[str, CompiledBundle] = OrderedDict()
_BUNDLE_CACHE_LOCK = threading.Lock()


def compiled(digest: str, load_content: Callable[[], Mapping[str, Any]]) -> CompiledBundle:
    """Return the compiled bundle of `digest`, loading and compiling its content only on a cache miss."""
    with _BUNDLE_CACHE_LOCK:
        cached = _BUNDLE_CACHE.get(digest)
        if cached is not None:
            _BUNDLE_CACHE.move_to_end(digest)
            return cached
    bundle = build_bundle(load_content(), digest)
    with _BUNDLE_CACHE_LOCK:
        _BUNDLE_CACHE[digest] = bundle
        _BUNDLE_CACHE.move_to_end(digest)
        while len(_BUNDLE_CACHE) > BUNDLE_CACHE_SIZE:
            _BUNDLE_CACHE.popitem(last=False)
    return bundle


def compile_bundle(content: Mapping[str, Any], digest: str | None = None) -> CompiledBundle:
    """Return the compiled bundle, from the cache when its digest was compiled before."""
    return compiled(digest or bundle_digest(content), lambda: content)


def clear_bundle_cache() -> None:
    """Forget every compiled bundle."""
    with _BUNDLE_CACHE_LOCK:
        _BUNDLE_CACHE.clear()


def build_bundle(content: Mapping[str, Any], digest: str) -> CompiledBundle:
    """Return a freshly compiled bundle; raise BundleCompileError naming the file at fault."""
    manifest = content.get(MANIFEST_PATH)
    if not isinstance(manifest, Mapping):
        raise BundleCompileError(MISSING_MANIFEST, MANIFEST_PATH)
    for key in ("name", "version"):
        if key not in manifest:
            raise BundleCompileError(MISSING_KEY.format(key=key), MANIFEST_PATH)
    entities = index_files(content, "entities/", "entity", compile_entity)
    policies = index_files(content, "policies/", "policy", compile_policy_file)
    templates = index_files(content, "templates/", "template", compile_template)
    pipelines: dict[str, Pipeline] = {}
    specs = manifest.get("pipelines") or []
    if not isinstance(specs, list):
        raise BundleCompileError(NOT_A_LIST.format(key="pipelines"), MANIFEST_PATH)
    for spec in specs:
        pipeline = compile_pipeline(spec, entities, policies, templates)
        if pipeline.name in pipelines:
            raise BundleCompileError(
                DUPLICATE_NAME.format(kind="pipeline", name=pipeline.name), MANIFEST_PATH
            )
        pipelines[pipeline.name] = pipeline
    suites = tuple((path, content[path]) for path in bundle_files(content, "suites/"))
    return CompiledBundle(
        name=str(manifest["name"]),
        version=str(manifest["version"]),
        digest=digest,
        content=content,
        entities=entities,
        policies=policies,
        templates=templates,
        pipelines=pipelines,
        suites=suites,
    )


def bundle_files(content: Mapping[str, Any], folder: str) -> list[str]:
    """Return the sorted paths of the YAML files directly in `folder`."""
    return sorted(
        path
        for path in content
        if path.startswith(folder) and path.endswith(YAML_SUFFIXES) and "/" not in path[len(folder) :]
    )


def index_files(
    content: Mapping[str, Any], folder: str, kind: str, compile_one: Callable[[Mapping[str, Any]], Any]
) -> dict[str, Any]:
    """Return {name: compiled} for every file of `folder`; raise BundleCompileError naming the file."""
    index: dict[str, Any] = {}
    for path in bundle_files(content, folder):
        spec = content[path]
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise BundleCompileError(MISSING_KEY.format(key="name"), path)
        if spec["name"] in index:
            raise BundleCompileError(DUPLICATE_NAME.format(kind=kind, name=spec["name"]), path)
        try:
            index[spec["name"]] = compile_one(spec)
        except BundleCompileError as error:
            raise BundleCompileError(error.message, path) from error
    return index


def compile_policy_file(spec: Mapping[str, Any]) -> Policy:
    """Return the compiled policy of a policy file."""
    try:
        return compile_policy(spec)
    except PolicyError as error:
        raise BundleCompileError(BAD_POLICY.format(reason=error)) from error


def compile_template(spec: Mapping[str, Any]) -> CompiledTemplate:
    """Return the template file compiled in the sandboxed environment."""
    environment = template_environment()
    name = spec["name"]
    if not isinstance(spec.get("prompt"), str):
        raise BundleCompileError(MISSING_KEY.format(key="prompt"))
    try:
        system = compile_template_text(environment, str(spec.get("system") or ""))
        prompt = compile_template_text(environment, spec["prompt"])
    except TemplateSyntaxError as error:
        raise BundleCompileError(
            BAD_TEMPLATE.format(template=name, line=error.lineno, reason=error.message)
        ) from error
    return CompiledTemplate(name, system, prompt)


def compile_template_text(environment: Environment, source: str) -> Template | str:
    """Return the compiled template, or the text itself when it holds no Jinja markup (nothing to render)."""
    if not any(marker in source for marker in JINJA_MARKERS):
        return source
    return environment.from_string(source)


def compile_pipeline(
    spec: Any,
    entities: Mapping[str, Entity],
    policies: Mapping[str, Policy],
    templates: Mapping[str, CompiledTemplate],
) -> Pipeline:
    """Return a pipeline with every reference resolved."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise BundleCompileError(MISSING_KEY.format(key="pipelines[].name"), MANIFEST_PATH)
    name = spec["name"]
    input_entity = resolve(entities, spec.get("input"), "entity", name)
    output_entity = resolve(entities, spec.get("output"), "entity", name)
    template = resolve(templates, spec.get("template"), "template", name)
    model = spec.get("model") or {}
    if not isinstance(model, Mapping):
        raise BundleCompileError(NOT_A_MAPPING.format(key="model"), MANIFEST_PATH)
    names = spec.get("policies") or []
    if not isinstance(names, list):
        raise BundleCompileError(NOT_A_LIST.format(key="policies"), MANIFEST_PATH)
    listed = [resolve(policies, policy_name, "policy", name) for policy_name in names]
    return Pipeline(
        name=name,
        input=input_entity,
        output=output_entity,
        template=template,
        model=dict(model),
        policies=tuple(names),
        pre=tuple(policy for policy in listed if policy.stage == "pre"),
        post=tuple(policy for policy in listed if policy.stage == "post"),
        store_payload=spec.get("store_payload") is True,
    )


def resolve(index: Mapping[str, Any], name: Any, kind: str, pipeline: str) -> Any:
    """Return index[name]; raise BundleCompileError for an unknown reference."""
    try:
        return index[name]
    except (KeyError, TypeError):
        raise BundleCompileError(
            UNKNOWN_REFERENCE.format(pipeline=pipeline, kind=kind, name=name), MANIFEST_PATH
        ) from None
