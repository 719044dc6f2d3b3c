"""Atomic writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import numpy as np
import pytest

from her import atomic


def test_savez_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "a.npz"
    atomic.savez(path, {"x": np.arange(3)})

    class Exploding:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic.savez(path, {"x": np.arange(5), "y": Exploding()})
    with np.load(path) as data:
        assert data["x"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary left behind


def test_compressed_savez_loads_with_numpy(tmp_path):
    arrays = {"a": np.zeros((1000, 7), np.float32), "b": np.array(3)}
    atomic.savez(tmp_path / "c.npz", arrays, compresslevel=1)
    with np.load(tmp_path / "c.npz") as data:
        assert data["a"].shape == (1000, 7) and int(data["b"]) == 3
    assert (tmp_path / "c.npz").stat().st_size < arrays["a"].nbytes / 10


@pytest.mark.parametrize(
    "array",
    [
        np.arange(10_000, dtype=np.float32).reshape(100, 4, 25),
        np.arange(12.0).reshape(3, 4).T,  # Fortran order
        np.array(7),
        np.zeros((0, 3), np.float32),
        np.array([True, False]),
        np.array(["ab", "c"]),
        np.arange(6, dtype=">i4"),
    ],
)
def test_write_npy_writes_numpys_bytes_in_small_chunks(array):
    import io

    ours, numpys = io.BytesIO(), io.BytesIO()
    atomic.write_npy(ours, array, chunk_bytes=7)  # chunks that split elements
    np.lib.format.write_array(numpys, array, allow_pickle=False)
    if array.flags.c_contiguous:
        assert ours.getvalue() == numpys.getvalue()
    ours.seek(0)
    loaded = np.lib.format.read_array(ours)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)


def test_write_npy_refuses_object_arrays():
    import io

    with pytest.raises(ValueError, match="object"):
        atomic.write_npy(io.BytesIO(), np.array([{"a": 1}], dtype=object))


def test_written_files_get_the_usual_permissions(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode
