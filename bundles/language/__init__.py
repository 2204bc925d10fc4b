"""The bundle language: read, check, compile and run bundles. Pure Python: no Django, no database.

`archive` reads files safely, `documents` parses YAML keeping positions, `schemas` and `checks` report every
error of a bundle at once, `compiler` turns valid content into a `CompiledBundle`, `execution` runs one of
its pipelines, and `suites` runs its test suites. The CLI imports this package without Django.
"""
