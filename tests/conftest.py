"""Shared test helpers (fixtures) for the grokscope test suite."""

import pytest


def _assert_one_line_error(result, *fragments):
    """A CLI result that failed the way users are promised: exit 2, one `grokscope: error:` line on stderr
    naming the problem, no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grokscope: error:"), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def assert_one_line_error():
    return _assert_one_line_error
