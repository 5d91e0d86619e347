"""The harness's ground: ``esl_build.cli.main`` runs a build in this process and writes to
the ``sys.stdout`` of that moment (doit's own default is the one of its import)."""

from __future__ import annotations

from hostile_harness import World


def test_each_in_process_build_prints_to_the_stdout_it_was_given(small_world: World) -> None:
    with small_world.sandbox() as repo:
        outputs = [small_world.cli(repo, "build") for _ in range(2)]
    for code, output in outputs:
        assert code == 0, output
        assert "requests sent: 0" in output and "up to date" in output, output
