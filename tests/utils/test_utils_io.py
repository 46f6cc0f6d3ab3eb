"""finetec.utils.io: atomic writes, their file permissions and the umask read once at import."""

import os
import stat
import subprocess
import sys

import pytest

from finetec.utils import io as uio


def test_umask_constant_is_the_process_umask():
    current = os.umask(0o022)
    os.umask(current)
    assert uio._UMASK == current
    # a process started with another umask reads that one, and reading it leaves it unchanged
    code = ("import os; from finetec.utils import io; m = os.umask(0); "
            "print(oct(io._UMASK), oct(m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: os.umask(0o027)).stdout.split()
    assert out == ["0o27", "0o27"]


def test_atomic_write_replaces_with_open_permissions(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    uio.atomic_write_text(p, "one")
    uio.atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~uio._UMASK
    assert [f.name for f in p.parent.iterdir()] == ["f.txt"]


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with uio.atomic_write(p, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["f.txt"]
