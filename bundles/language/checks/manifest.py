"""Check bundle.yaml's pipelines: their references resolve, and what their templates and policies read."""

from __future__ import annotations

from bundles.language.checks.context import (
    MESSAGE_DUPLICATE_IN_LIST,
    BundleCheck,
    Definition,
    mapping,
    sequence,
)
from bundles.language.checks.policy import check_redacted_fields
from bundles.language.checks.template import check_template_fields
from bundles.language.documents import ParsedFile, Parts
from bundles.language.errors import DUPLICATE_NAME
from bundles.language.schemas import ENTITY, POLICY, TEMPLATE
from policies.rules import REDACT, STAGE_TARGETS, STAGES


def check_pipelines(bundle: BundleCheck) -> None:
    """Check each pipeline's references and what its template and policies read from the entities."""
    manifest = bundle.manifest()
    if manifest is None:
        return
    for index, pipeline in enumerate(sequence(manifest.value.get("pipelines"))):
        pipeline = mapping(pipeline)
        parts: Parts = ("pipelines", index)
        entities = {
            "input": bundle.resolve(manifest, (*parts, "input"), pipeline.get("input"), ENTITY),
            "output": bundle.resolve(manifest, (*parts, "output"), pipeline.get("output"), ENTITY),
        }
        template = bundle.resolve(manifest, (*parts, "template"), pipeline.get("template"), TEMPLATE)
        policies = pipeline_policies(bundle, manifest, parts, pipeline)
        name = pipeline.get("name")
        if template and entities["input"]:
            check_template_fields(bundle, template, entities["input"], name)
        for policy in policies:
            # A policy redacts from the record of its stage (unknown stages are the schema's to report).
            stage = policy.body.get("stage")
            entity = entities[STAGE_TARGETS[stage] if stage in STAGES else "output"]
            if entity and policy.body.get("effect") == REDACT:
                check_redacted_fields(bundle, policy, entity, name)


def pipeline_policies(
    bundle: BundleCheck, manifest: ParsedFile, parts: Parts, pipeline: dict
) -> list[Definition]:
    """Return the policies a pipeline lists, reporting unknown and repeated names."""
    policies, seen = [], set()
    for index, name in enumerate(sequence(pipeline.get("policies"))):
        where = (*parts, "policies", index)
        if not isinstance(name, str):
            continue  # reported by the schema
        if name in seen:
            bundle.report(DUPLICATE_NAME, manifest, where, MESSAGE_DUPLICATE_IN_LIST.format(name=name))
            continue
        seen.add(name)
        policy = bundle.resolve(manifest, where, name, POLICY)
        if policy:
            policies.append(policy)
    return policies
