import pytest

from stages.lib.atomic import atomic_path, write_text


def test_complete_write_replaces_the_file(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("previous model")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        assert temporary.suffix == ".keras" and temporary.parent == tmp_path
        temporary.write_text("half a mod")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing
    assert target.read_text() == "previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_interrupted_directory_write_is_removed(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "saved") as temporary:
        temporary.mkdir()
        (temporary / "part").write_text("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
