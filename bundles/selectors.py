"""Reads of bundles and versions."""

from bundles.exceptions import BUNDLE_NOT_FOUND, VERSION_NOT_FOUND, BundleNotFound, VersionNotFound
from bundles.models import Bundle, BundleVersion
from bundles.versioning import precedence_key


def bundle_list():
    """Return the tenant's bundles with their version counts."""
    return Bundle.objects.order_by("name")


def access_bundle(actor, name: str) -> Bundle:
    """Return bundle `name`, or raise BundleNotFound (every member of the tenant may read bundles)."""
    bundle = Bundle.objects.filter(name=name).first()
    if bundle is None:
        raise BundleNotFound(BUNDLE_NOT_FOUND.format(name=name))
    return bundle


def access_version(actor, name: str, version: str) -> BundleVersion:
    """Return version `version` of bundle `name`, or raise the matching not-found error."""
    bundle = access_bundle(actor, name)
    found = BundleVersion.objects.filter(bundle=bundle, version=version).select_related("bundle").first()
    if found is None:
        raise VersionNotFound(VERSION_NOT_FOUND.format(name=name, version=version))
    return found


def versions_of(bundle: Bundle) -> list[BundleVersion]:
    """Return the bundle's versions, highest semver first."""
    versions = list(BundleVersion.objects.filter(bundle=bundle).defer("files", "content"))
    return sorted(versions, key=lambda v: precedence_key(v.version), reverse=True)


def latest_version(bundle: Bundle) -> BundleVersion | None:
    """Return the bundle's highest version, or None."""
    versions = versions_of(bundle)
    return versions[0] if versions else None
