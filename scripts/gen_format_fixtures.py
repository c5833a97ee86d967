#!/usr/bin/env python3
"""Writes testdata/formats/: the files the npz/fvecs/bvecs plugin tests read,
written by numpy itself (np.savez, np.savez_compressed, tofile), so the Go
readers are checked against a writer nobody here wrote.

Row i, column j of every array holds value(i, j), computed the same way in
the Go tests (formats_test.go): exact in float16/float32 and uint8.

    pip install numpy && python3 scripts/gen_format_fixtures.py
"""
import os
import numpy as np

ROWS, DIM = 300, 12
OUT = os.path.join(os.path.dirname(__file__), "..", "testdata", "formats")


def value(i, j, mod):
    return ((i * 31 + j * 7) % mod)


def main():
    os.makedirs(OUT, exist_ok=True)
    i = np.arange(ROWS)[:, None]
    j = np.arange(DIM)[None, :]
    img = (value(i, j, 251) / 8.0 - 15.0).astype("<f4")      # exact in f4
    txt = (value(i, j, 199) / 4.0 - 20.0).astype("<f2")      # exact in f2
    ids = np.arange(ROWS, dtype="<u8")
    np.savez(os.path.join(OUT, "emb_stored.npz"), img=img, txt=txt, ids=ids)
    np.savez_compressed(os.path.join(OUT, "emb_deflated.npz"), img=img, txt=txt)
    np.savez_compressed(os.path.join(OUT, "one_deflated.npz"), img)  # member arr_0
    # zip64 records (central directory extras and the zip64 end record), as
    # an archive over 4 GiB has them: forced with a small limit.
    import zipfile
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 1000
    try:
        np.savez(os.path.join(OUT, "emb_zip64.npz"), img=img, txt=txt)
    finally:
        zipfile.ZIP64_LIMIT = limit
    # fvecs: int32 dim + float32 values per record; bvecs: int32 dim + uint8.
    rec = np.empty((ROWS, 1 + DIM), dtype="<i4")
    rec[:, 0] = DIM
    rec[:, 1:] = img.view("<i4")
    rec.tofile(os.path.join(OUT, "emb.fvecs"))
    b = np.empty((ROWS, 4 + DIM), dtype="u1")
    b[:, :4] = np.frombuffer(np.array([DIM], dtype="<i4").tobytes(), dtype="u1")
    b[:, 4:] = value(i, j, 256).astype("u1")
    b.tofile(os.path.join(OUT, "emb.bvecs"))


if __name__ == "__main__":
    main()
