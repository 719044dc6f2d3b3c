"""Property-based: random bytes, and valid archives with random bytes flipped, given to the policy and demo
loaders always end in their one-line error, never in another exception."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her import policy_file
from her.demo import DemoFileError, load_demos

DIMS = {"o": 10, "g": 3, "u": 4}


def valid_demo_bytes() -> bytes:
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        "o": rng.normal(size=(2, 51, 10)),
        "ag": rng.normal(size=(2, 51, 3)),
        "g": rng.normal(size=(2, 50, 3)),
        "u": rng.uniform(-1, 1, (2, 50, 4)),
        "info_is_success": np.zeros((2, 50, 1)),
    }
    out = io.BytesIO()
    np.savez(
        out,
        **{k: v.astype(np.float32) for k, v in arrays.items()},
        env_id=np.array("FetchReach-v4"),
        format=np.array("her-tf2-demos"),
        version=np.array(1),
    )
    return out.getvalue()


def valid_policy_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.npz"
        policy_file.save_policy(
            path, {"actor/0": np.zeros((2, 2), np.float32)}, {"env_id": "FetchReach-v4"}, DIMS, epoch=0
        )
        return path.read_bytes()


DEMO, POLICY = valid_demo_bytes(), valid_policy_bytes()


def corrupted(valid: bytes):
    flips = st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)), min_size=1, max_size=8)
    return flips.map(lambda changes: _apply(valid, changes))


def _apply(valid: bytes, changes) -> bytes:
    data = bytearray(valid)
    for index, value in changes:
        data[index] = value
    return bytes(data)


def any_bytes(valid: bytes):
    return st.one_of(st.binary(max_size=2000), corrupted(valid), st.integers(0, len(valid)).map(lambda n: valid[:n]))


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(any_bytes(DEMO))
def test_demo_loader_gives_a_demo_file_error_or_valid_demos(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demos.npz"
        path.write_bytes(data)
        try:
            demos = load_demos(path, env_id="FetchReach-v4", dims=DIMS, T=50, num_demo=2)
        except DemoFileError as e:
            assert "\n" not in str(e)
        else:  # a flip inside data bytes that the CRC check did not catch still gives well-formed arrays
            assert demos["o"].shape == (2, 51, 10) and np.isfinite(demos["o"]).all()


@SETTINGS
@given(any_bytes(POLICY))
def test_policy_loader_gives_a_policy_file_error_or_a_policy(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.npz"
        path.write_bytes(data)
        try:
            arrays, meta = policy_file.read_policy(path)
        except policy_file.PolicyFileError as e:
            assert "\n" not in str(e)
        else:
            assert isinstance(meta, dict)


def crafted(tmp_path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    path = tmp_path / "crafted.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy_header(shape: tuple[int, ...]) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return out.getvalue()


def test_a_member_claiming_a_huge_shape_or_not_an_npy_is_one_error_without_allocating(tmp_path):
    import pytest

    from her import checkpoints
    from her.errors import UserError

    meta = io.BytesIO()
    np.save(meta, np.array('{"format": "her-tf2-policy"}'))
    huge = crafted(tmp_path, {"o.npy": npy_header((10**9, 10**6)), "meta.npy": meta.getvalue()})
    loaders = [
        policy_file.read_policy,
        lambda p: load_demos(p, env_id="FetchReach-v4", dims=DIMS, T=50, num_demo=1),
        checkpoints.read_buffer,
        checkpoints.read_state,
    ]
    for load in loaders:
        with pytest.raises(
            UserError,
            match=r"member o.npy claims shape \(1000000000, 1000000\), 4000000000000000 "
            r"bytes, more than its 128 bytes hold",
        ):
            load(huge)
    not_npy = crafted(tmp_path, {"notes.txt": b"hello", "meta.npy": meta.getvalue()})
    for load in loaders:
        with pytest.raises(UserError, match="member notes.txt is not an .npy array"):
            load(not_npy)
