"""The released-versions view: every version ever deployed to an environment, the one live there flagged.

Promotions owns it: it is a reading of promotions' release pointer (deployments) joined with the versions it
points at. The runtime reads releases only through it (its database role may SELECT the view and none of the
tables under it, see runtime/grants.py), so the view keeps the `runtime_` name its readers know it by. Stated
as CREATE OR REPLACE, so that (re)creating it is idempotent and keeps the grants given on it.
"""

RELEASED_VIEW = "runtime_released_version"

RELEASED_VIEW_SQL = """
CREATE OR REPLACE VIEW runtime_released_version AS
SELECT
    deployed.version_id,
    deployed.bundle_id,
    deployed.environment_id,
    bundle.name AS bundle,
    environment.name AS environment,
    version.version,
    version.digest,
    version.manifest,
    version.content,
    deployed.first_deployed_at,
    deployed.last_deployed_at,
    deployed.version_id = (
        SELECT latest.version_id FROM promotions_deployment latest
        WHERE latest.bundle_id = deployed.bundle_id AND latest.environment_id = deployed.environment_id
        ORDER BY latest.id DESC LIMIT 1
    ) AS live
FROM (
    SELECT bundle_id, environment_id, version_id,
           min(created_at) AS first_deployed_at, max(created_at) AS last_deployed_at
    FROM promotions_deployment
    GROUP BY bundle_id, environment_id, version_id
) deployed
JOIN bundles_bundleversion version ON version.id = deployed.version_id
JOIN bundles_bundle bundle ON bundle.id = deployed.bundle_id
JOIN promotions_environment environment ON environment.id = deployed.environment_id;
"""
