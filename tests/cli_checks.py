"""A check the CLI robustness tests share: a refused command's one error line (``from cli_checks import refused``)."""

from __future__ import annotations

from pslsched.cli import main


def refused(capsys, argv: list[str], field: str, *needles: str, stdout_empty: bool = False) -> str:
    """Run ``sched ARGV``: exit 2, one line on stderr naming ``field`` (and the needles), no traceback (and, with
    ``stdout_empty``, nothing on stdout); the line."""
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith(f"sched: error: {field}"), err
    assert "Traceback" not in err
    assert not (stdout_empty and out), out
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]
