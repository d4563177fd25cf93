import pytest

from stages.lib.atomic import atomic_folder, atomic_path, write_text


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


def test_a_killed_runs_temporary_file_is_removed(tmp_path):
    (tmp_path / ".model.tmp-99999.keras").write_text("half a model, SIGKILLed")
    write_text(tmp_path / "model.keras", "a model")
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_interrupted_directory_write_is_removed(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "saved") as temporary:
        temporary.mkdir()
        (temporary / "part").write_text("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_folder_is_replaced_whole_and_a_killed_runs_temporary_removed(tmp_path):
    target = tmp_path / "processed"
    target.mkdir()
    (target / "old.npy").write_text("old")
    (tmp_path / ".processed.tmp-99999").mkdir()  # left by a run killed with SIGKILL
    with atomic_folder(target) as folder:
        (folder / "new.npy").write_text("new")
        assert [p.name for p in target.iterdir()] == ["old.npy"]  # untouched until complete
    assert [p.name for p in target.iterdir()] == ["new.npy"]
    assert [p.name for p in tmp_path.iterdir()] == ["processed"]


def test_interrupted_folder_write_keeps_the_old_folder_and_no_temporary(tmp_path):
    target = tmp_path / "plots"
    target.mkdir()
    (target / "samples.png").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as folder:
        (folder / "samples.png").write_text("half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]
    assert (target / "samples.png").read_text() == "old"
