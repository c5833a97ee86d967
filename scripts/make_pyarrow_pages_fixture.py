#!/usr/bin/env python3
"""Writes testdata/vectors/hf_v1.parquet, hf_v2_dict.parquet and
hf_fixed.parquet: a
Hugging Face-style table (an id, a caption, a score and a 48-d
list<float> embedding per row) written by Apache Arrow (pyarrow) with
small pages, so every column chunk holds many pages, the way the typed
page reader meets them in real files (internal/pq/vectors_test.go):

  hf_v1.parquet       data page v1 (pyarrow's default), plain float
                      values, Snappy, dictionary strings, 400 rows in row
                      groups of 150, 2 KiB pages
  hf_v2_dict.parquet  data page v2, page CRCs written, zstd, every column
                      dictionary-encoded (the embedding's values repeat, so
                      its dictionary never falls back to plain)
  hf_fixed.parquet    as hf_v1, but the embedding is a fixed_size_list<float>
                      [48] (what `datasets` writes for a Sequence with a
                      length), plus emb16, the same values as a
                      fixed_size_list<halffloat>[48] (rounded to float16;
                      float32's largest value becomes float16's, 65504)

Row i's embedding component j is ((i*131 + j*17) % 2001 - 1000) / 64,
exact in float32, except row 3, whose first three components are the
smallest subnormal, -0 and the largest float32. Run from the repository
root:

    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow numpy
    /tmp/pa/bin/python scripts/make_pyarrow_pages_fixture.py
"""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

OUT = "testdata/vectors"
N, W = 400, 48


def table():
    i = np.arange(N)[:, None]
    j = np.arange(W)[None, :]
    emb = (((i * 131 + j * 17) % 2001 - 1000) / 64).astype(np.float32)
    emb[3, 0] = np.float32(1e-45)
    emb[3, 1] = np.float32(-0.0)
    emb[3, 2] = np.finfo(np.float32).max
    return pa.table({
        "id": pa.array(np.arange(N, dtype=np.int64)),
        "caption": pa.array([f"caption {k % 37}" for k in range(N)]),
        "score": pa.array([k / 8 for k in range(N)], pa.float64()),
        "emb": pa.array(list(emb), pa.list_(pa.float32())),
    })


def fixed(t):
    emb = np.stack(t.column("emb").to_numpy(zero_copy_only=False))
    flat = emb.reshape(-1)
    return t.set_column(3, "emb", pa.FixedSizeListArray.from_arrays(pa.array(flat), W)).append_column(
        "emb16", pa.FixedSizeListArray.from_arrays(pa.array(np.clip(flat, -65504, 65504).astype(np.float16)), W))


def main():
    t = table()
    pq.write_table(t, f"{OUT}/hf_v1.parquet", row_group_size=150, data_page_size=2048,
                   compression="snappy", use_dictionary=["caption"])
    pq.write_table(t, f"{OUT}/hf_v2_dict.parquet", row_group_size=150, data_page_size=2048,
                   compression="zstd", data_page_version="2.0", write_page_checksum=True,
                   use_dictionary=True)
    pq.write_table(fixed(t), f"{OUT}/hf_fixed.parquet", row_group_size=150, data_page_size=2048,
                   compression="snappy", use_dictionary=["caption"])
    print(f"wrote {OUT}/hf_v1.parquet, hf_v2_dict.parquet, hf_fixed.parquet: pyarrow {pa.__version__}")


main()
