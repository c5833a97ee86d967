#!/usr/bin/env python3
"""Writes testdata/vectors/: Parquet files made by Apache Arrow (pyarrow),
holding every vector kind snappipe loads, and the values they hold as JSON,
for the end-to-end tests of issue 16. Run from the repository root:

    python3 -m venv /tmp/pa && /tmp/pa/bin/pip install pyarrow numpy
    /tmp/pa/bin/python scripts/make_vectors_fixture.py

mixed.parquet (300 rows, row groups of 100):
  id        uint64                      point ids (1000 + 7*row)
  title     string                      payload
  dense     list<float>       8-d       a dense vector
  dense16   list<halffloat>   4-d       a dense vector stored as float16
  tokens    list<list<float>> 1-5 x 6-d a multivector (ColBERT-style)
  sp_idx    list<uint32>                sparse indices (some rows empty, one 4294967295)
  sp_val    list<float>                 sparse values
  bm_idx    list<int64>                 a second sparse vector, int64 indices
  bm_val    list<double>
bad_sparse.parquet (10 rows): row 5 has 3 indices and 2 values.
cases.parquet (4 rows): one column per way a multivector or sparse column
  can be wrong, each wrong in row 2 only (see internal/pq/vectors_test.go).
expect.json: every row's values as the files hold them (float32 / float16
values written exactly as doubles).
"""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

OUT = "testdata/vectors"
rng = np.random.default_rng(16)


def mixed(n):
    rows = {k: [] for k in ["id", "title", "dense", "dense16", "tokens", "sp_idx", "sp_val", "bm_idx", "bm_val"]}
    for i in range(n):
        rows["id"].append(1000 + 7 * i)
        rows["title"].append(f"item {i}")
        rows["dense"].append(rng.standard_normal(8).astype(np.float32))
        rows["dense16"].append(rng.standard_normal(4).astype(np.float16))
        ntok = 1 + (i * 3) % 5
        rows["tokens"].append([rng.standard_normal(6).astype(np.float32) for _ in range(ntok)])
        nnz = 0 if i % 10 == 3 else 1 + i % 9
        idx = rng.choice(30522, size=nnz, replace=False).astype(np.uint32)
        if i == 1:
            idx[0] = 4294967295
        rows["sp_idx"].append(idx)
        rows["sp_val"].append(rng.random(nnz).astype(np.float32))
        bnnz = i % 4
        rows["bm_idx"].append(rng.choice(1 << 40, size=bnnz, replace=False).astype(np.int64) % 4000000000)
        rows["bm_val"].append(rng.random(bnnz))
    table = pa.table({
        "id": pa.array(rows["id"], pa.uint64()),
        "title": pa.array(rows["title"], pa.string()),
        "dense": pa.array([list(v) for v in rows["dense"]], pa.list_(pa.float32())),
        "dense16": pa.array([v for v in rows["dense16"]], pa.list_(pa.float16())),
        "tokens": pa.array([[list(t) for t in toks] for toks in rows["tokens"]], pa.list_(pa.list_(pa.float32()))),
        "sp_idx": pa.array([list(v) for v in rows["sp_idx"]], pa.list_(pa.uint32())),
        "sp_val": pa.array([list(v) for v in rows["sp_val"]], pa.list_(pa.float32())),
        "bm_idx": pa.array([list(v) for v in rows["bm_idx"]], pa.list_(pa.int64())),
        "bm_val": pa.array([list(v) for v in rows["bm_val"]], pa.list_(pa.float64())),
    })
    expect = []
    for i in range(n):
        expect.append({
            "id": rows["id"][i],
            "title": rows["title"][i],
            "dense": [float(x) for x in rows["dense"][i]],
            "dense16": [float(x) for x in rows["dense16"][i]],
            "tokens": [[float(x) for x in t] for t in rows["tokens"][i]],
            "sp_idx": [int(x) for x in rows["sp_idx"][i]],
            "sp_val": [float(x) for x in rows["sp_val"][i]],
            "bm_idx": [int(x) for x in rows["bm_idx"][i]],
            # float32 on the wire: the expectation is the double rounded to float32
            "bm_val": [float(np.float32(x)) for x in rows["bm_val"][i]],
        })
    return table, expect


def main():
    os.makedirs(OUT, exist_ok=True)
    table, expect = mixed(300)
    pq.write_table(table, f"{OUT}/mixed.parquet", row_group_size=100, compression="zstd")
    with open(f"{OUT}/expect.json", "w") as f:
        json.dump(expect, f)
    bad = pa.table({
        "id": pa.array(range(10), pa.uint64()),
        "dense": pa.array([[float(i)] * 4 for i in range(10)], pa.list_(pa.float32())),
        "sp_idx": pa.array([[1, 2, 3] if i == 5 else [1, 2] for i in range(10)], pa.list_(pa.uint32())),
        "sp_val": pa.array([[0.5, 0.25] for i in range(10)], pa.list_(pa.float32())),
    })
    pq.write_table(bad, f"{OUT}/bad_sparse.parquet")
    ok_tok = [[1.0, 2.0], [3.0, 4.0]]

    def col(bad_value, good, typ):
        return pa.array([bad_value if i == 2 else good for i in range(4)], typ)

    lf, llf = pa.list_(pa.float32()), pa.list_(pa.list_(pa.float32()))
    cases = pa.table({
        "tok_ok": col([[5.0, 6.0]], ok_tok, llf),
        "tok_zero": col([], ok_tok, llf),
        "tok_null": col(None, ok_tok, llf),
        "tok_empty_token": col([[1.0, 2.0], []], ok_tok, llf),
        "tok_null_token": col([[1.0, 2.0], None], ok_tok, llf),
        "tok_width": col([[1.0, 2.0], [1.0, 2.0, 3.0]], ok_tok, llf),
        "tok_null_component": col([[1.0, None]], ok_tok, llf),
        "flat": col([1.0, 2.0], [1.0, 2.0], lf),
        "idx_ok": col([9, 1, 4], [1, 2], pa.list_(pa.int32())),
        "val_ok": col([0.9, 0.1, 0.4], [0.5, 0.25], lf),
        "idx_neg": col([-1, 2], [1, 2], pa.list_(pa.int32())),
        "idx_big": col([4294967296, 2], [1, 2], pa.list_(pa.int64())),
        "idx_dup": col([3, 3], [1, 2], pa.list_(pa.uint32())),
        "idx_null": col(None, [1, 2], pa.list_(pa.uint32())),
        "val_null": col(None, [0.5, 0.25], lf),
        "val_null_elem": col([0.5, None], [0.5, 0.25], lf),
        "idx_str": col(["a", "b"], ["a", "b"], pa.list_(pa.string())),
        "score16": pa.array([0.5, -2.0, None, 65504.0], pa.float16()),  # a float16 payload scalar
    })
    pq.write_table(cases, f"{OUT}/cases.parquet")
    print(f"wrote {OUT}: pyarrow {pa.__version__}")


main()
