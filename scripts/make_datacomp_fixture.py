#!/usr/bin/env python3
"""Writes testdata/datacomp_small/: a miniature of mlfoundations/datacomp_small
in the same layout — <hash>.parquet (metadata, pyarrow) beside <hash>.npz
(numpy.savez: b32_img, b32_txt fp16 512-d, l14_img, l14_txt fp16 768-d) —
three shards of 20, 15 and 25 rows, for configs/datacomp-small.yaml's test.
Run from the repository root:

    /tmp/pa/bin/python scripts/make_datacomp_fixture.py
"""
import hashlib
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

OUT = "testdata/datacomp_small"
rng = np.random.default_rng(2023)


def shard(k, n):
    name = hashlib.md5(f"shard-{k}".encode()).hexdigest()  # 32 hex digits, like DataComp's
    uids = [hashlib.md5(f"uid-{k}-{i}".encode()).hexdigest() for i in range(n)]
    table = pa.table({
        "uid": pa.array(uids, pa.string()),
        "url": pa.array([f"https://example.com/{k}/{i}.jpg" for i in range(n)], pa.string()),
        "text": pa.array([f"caption {k}-{i}" for i in range(n)], pa.string()),
        "original_width": pa.array(rng.integers(64, 4096, n), pa.int64()),
        "original_height": pa.array(rng.integers(64, 4096, n), pa.int64()),
        "clip_b32_similarity_score": pa.array(rng.random(n).astype(np.float32), pa.float32()),
        "clip_l14_similarity_score": pa.array(rng.random(n).astype(np.float32), pa.float32()),
        "face_bboxes": pa.array([[list(rng.random(4))] if i % 3 == 0 else [] for i in range(n)], pa.list_(pa.list_(pa.float64()))),
        "sha256": pa.array([hashlib.sha256(u.encode()).hexdigest() for u in uids], pa.string()),
    })
    pq.write_table(table, f"{OUT}/{name}.parquet")
    arrays = {
        "b32_img": rng.standard_normal((n, 512)).astype(np.float16),
        "b32_txt": rng.standard_normal((n, 512)).astype(np.float16),
        "l14_img": rng.standard_normal((n, 768)).astype(np.float16),
        "l14_txt": rng.standard_normal((n, 768)).astype(np.float16),
    }
    np.savez(f"{OUT}/{name}.npz", **arrays)
    return name


os.makedirs(OUT, exist_ok=True)
for k, n in enumerate([20, 15, 25]):
    print(shard(k, n))
