"""Build every lesson under lessons/: `doit` (or `doit -n 4 -P thread`). See README.md."""

from esl_build.tasks import (  # noqa: F401  (doit collects the task_* names)
    DOIT_CONFIG,
    task_add_audio,
    task_import,
    task_index,
    task_tts,
    task_upload,
    task_validate,
)
