"""The public API in ``__all__`` resolves, and importing the package stays cheap."""

import esl_build
import esl_build.lesson


def test_every_public_name_resolves_once():
    for module in (esl_build, esl_build.lesson):
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None, name


def test_importing_the_package_loads_no_service_or_parser_library():
    import subprocess
    import sys
    code = ("import sys, esl_build.tasks; "
            "print(sorted(m for m in ('yaml', 'jinja2', 'lameenc', 'mutagen', 'notion_client',"
            " 'elevenlabs', 'boto3', 'esl_build.lesson.parse') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_package_version_is_the_distribution_version():
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["version"] == esl_build.__version__
