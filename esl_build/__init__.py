"""esl-build: publish ESL homework lessons from Markdown as a doit build graph.

The public API (loaded on first use, so importing one module stays cheap):

- ``Project`` (a lessons repository: settings, manifests, services) and ``Settings``
- ``status``, ``statuses``, ``run`` (the stage engine) and ``STAGES``
- ``parse_lesson``, ``read_lesson``, ``validate_paths`` (the lesson format)
- the error tree: ``EslBuildError``, ``LessonInvalid``, ``ConfigInvalid``, ``ServiceError``,
  ``PublishError``, ``VoiceError``, ``StorageError``, ``StateError``, ``ManifestCorrupt``,
  ``LeaseHeld``, ``WriteConflict``, and ``Problem``
- the manifest stores ``ManifestStore``, ``FileManifestStore``, ``S3ManifestStore``,
  ``PostgresManifestStore`` and ``S3Storage`` (boto3 and psycopg are imported on first use);
  the config providers ``ConfigProvider``, ``FileConfigProvider``, ``RemoteConfigProvider``
- ``create_pipeline`` and ``Pipeline`` (new_assignment, rerun_assignment,
  get_assignment_status), whose typed errors are ``PipelineError``: ``ValidationError``,
  ``ConfigurationError``, ``InfrastructureError``, ``ManifestError``
- observability: ``noop_logger``, ``noop_metrics``, ``JsonLinesLogger``, ``PrometheusMetrics``
"""

from collections.abc import Callable
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_HOMES = {
    "ConfigInvalid": "errors", "EslBuildError": "errors", "LeaseHeld": "errors",
    "LessonInvalid": "errors", "ManifestCorrupt": "errors", "Problem": "errors",
    "PublishError": "errors", "ServiceError": "errors", "StateError": "errors",
    "StorageError": "errors", "VoiceError": "errors", "WriteConflict": "errors",
    "FileManifestStore": "state.stores", "ManifestStore": "state.stores",
    "S3ManifestStore": "state.s3_store", "S3Storage": "services.s3",
    "PostgresManifestStore": "state.pg_store",
    "ConfigProvider": "config_provider", "FileConfigProvider": "config_provider",
    "RemoteConfigProvider": "config_provider",
    "ConfigurationError": "errors", "InfrastructureError": "errors", "ManifestError": "errors",
    "PipelineError": "errors", "ValidationError": "errors",
    "JsonLinesLogger": "observability", "PrometheusMetrics": "observability",
    "noop_logger": "observability", "noop_metrics": "observability",
    "Pipeline": "pipeline", "create_pipeline": "pipeline",
    "Project": "project", "Settings": "settings",
    "STAGES": "stages", "run": "stages", "status": "stages", "statuses": "stages",
    "parse_lesson": "lesson", "read_lesson": "lesson", "validate_paths": "lesson",
}

__all__ = sorted([*_HOMES, "__version__"])


def lazy_exports(package: str, homes: dict[str, str], namespace: dict[str, Any]
                 ) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each public name from its home module on first
    use (PEP 562), so importing a package does not import everything it offers."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(import_module(f"{package}.{homes[name]}"), name)
        return value

    return __getattr__


__getattr__ = lazy_exports("esl_build", _HOMES, globals())
