"""The DuckDB scratch database: working tables live in a file under memory_limit, and it is cleaned up."""

from __future__ import annotations

import os

import pytest

from alfia.cohorts.sources.duck import DEFAULT_MAX_THREADS, DuckSettings, close, connect, scratch_folder
from alfia.cohorts.sources.eicu import EicuConfig, extract_eicu
from alfia.cohorts.sources.mimic_iv import MimicConfig, extract_mimic_iv
from alfia.errors import AlfiaError


def _scratch_dirs(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("alfia-duckdb-"))


def test_working_tables_live_in_the_database_file_not_in_ram(tmp_path):
    con = connect(DuckSettings(memory_limit="64MB", temp_directory=str(tmp_path)))
    folder = scratch_folder(con)
    assert folder is not None and folder.parent == tmp_path
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                       ).fetchone()[0]
    assert path == str(folder / "work.duckdb")
    # ~160 MB of doubles: more than twice the memory limit, so the table has to sit in the file.
    con.execute("CREATE TABLE wide AS SELECT i::DOUBLE AS a, (i * 2)::DOUBLE AS b FROM range(10000000) t(i)")
    con.execute("CHECKPOINT")
    assert con.execute("SELECT count(*), sum(b) - 2 * sum(a) FROM wide").fetchone() == (10_000_000, 0)
    assert (folder / "work.duckdb").stat().st_size > 64 * 2**20
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0].endswith("MiB")
    close(con)
    assert not folder.exists()
    assert _scratch_dirs(tmp_path) == []


def test_threads_default_is_modest_and_settable(tmp_path):
    con = connect(DuckSettings(temp_directory=str(tmp_path)))
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == min(
        DEFAULT_MAX_THREADS, os.cpu_count() or 1)
    close(con)
    con = connect(DuckSettings(temp_directory=str(tmp_path), threads=1))
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 1
    close(con)


def test_bad_memory_limit_is_a_clear_error_and_leaves_nothing(tmp_path):
    with pytest.raises(AlfiaError, match="scratch database"):
        connect(DuckSettings(memory_limit="lots", temp_directory=str(tmp_path)))
    assert _scratch_dirs(tmp_path) == []


def test_failed_extractions_delete_their_scratch_database(tmp_path):
    spill = tmp_path / "spill"
    with pytest.raises(AlfiaError, match="does not exist"):
        extract_mimic_iv(MimicConfig(str(tmp_path / "nowhere"), duck=DuckSettings(temp_directory=str(spill))))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AlfiaError, match="not an eICU directory"):
        extract_eicu(EicuConfig(str(empty), duck=DuckSettings(temp_directory=str(spill))))
    assert spill.is_dir() and _scratch_dirs(spill) == []
