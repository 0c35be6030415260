import os
import stat

import pytest

from tdrag.atomic import atomic_path, write_json, write_text


def test_write_is_atomic_and_leaves_no_temp_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "first")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
