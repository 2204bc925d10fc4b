"""Check ontology.yaml: concept and relation names are unique, and relations join concepts."""

from __future__ import annotations

from typing import Any

from bundles.language.checks.context import BundleCheck, mapping, sequence
from bundles.language.documents import ONTOLOGY_FILE, ParsedFile, Parts
from bundles.language.errors import UNKNOWN_CONCEPT

MESSAGE_UNKNOWN_CONCEPT = "'{name}' is not a concept of the ontology"


def check_ontology(bundle: BundleCheck) -> None:
    """Collect the concepts, reporting repeated names and relations between unknown concepts."""
    ontology = bundle.parsed.get(ONTOLOGY_FILE)
    if not (ontology and ontology.usable):
        return
    concepts = sequence(ontology.value.get("concepts"))
    bundle.concepts = bundle.unique_names(ontology, concepts, ("concepts",), "concept")
    relations = sequence(ontology.value.get("relations"))
    bundle.unique_names(ontology, relations, ("relations",), "relation")
    for index, relation in enumerate(relations):
        for end in ("from", "to"):
            check_concept(bundle, ontology, ("relations", index, end), mapping(relation).get(end))


def check_concept(bundle: BundleCheck, parsed: ParsedFile, parts: Parts, name: Any) -> None:
    """Report a reference to a concept the ontology does not define."""
    if isinstance(name, str) and bundle.concepts is not None and name not in bundle.concepts:
        bundle.report(UNKNOWN_CONCEPT, parsed, parts, MESSAGE_UNKNOWN_CONCEPT.format(name=name))
