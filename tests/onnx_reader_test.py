#!/usr/bin/env python3
"""Checks facegraph's ONNX reader (build/test_onnx_reader) against the python
onnx package: every model in /work/shared/models, models made here with
onnx.helper (typed-field initializers, external data, Constant, If/Loop
subgraphs, IR versions), serialized tensors, and corrupt files that must fail
cleanly (exit 1 with a message, never a crash).

usage: onnx_reader_test.py [path/to/test_onnx_reader] [--valgrind]
Prints 'N passed, M failed' and exits non-zero on failure."""
import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = [a for a in sys.argv[1:] if not a.startswith("--")]
BINARY = args[0] if args else os.path.join(ROOT, "build", "test_onnx_reader")
USE_VALGRIND = "--valgrind" in sys.argv
MODELS = sorted(glob.glob("/work/shared/models/*.onnx"))

passed = 0
failed = 0


def report(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {what}: {detail}"[:2000])


def run(*argv):
    cmd = [BINARY, *argv]
    if USE_VALGRIND:
        cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def digest(data: bytes):
    return hashlib.sha256(data).hexdigest()


def tensor_bytes(t):
    arr = numpy_helper.to_array(t)
    if t.data_type == TensorProto.BOOL:
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr).tobytes()


def dim_view(type_proto):
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, -1, []
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tt.elem_type, len(dims), dims


def compare_tensor(what, mine, t, check_data=True):
    ok = mine["name"] == t.name and mine["dtype"] == t.data_type and mine["dims"] == list(t.dims)
    report(ok, f"{what} tensor header", f"{mine} vs {t.name} {t.data_type} {list(t.dims)}")
    if check_data:
        data = tensor_bytes(t)
        report(mine["nbytes"] == len(data) and mine["sha256"] == digest(data), f"{what} tensor data '{t.name}'",
               f"nbytes {mine['nbytes']} vs {len(data)}")


def compare_attr(what, mine, a, check_data):
    ok = mine["name"] == a.name and mine["type"] == a.type
    report(ok, f"{what} attr header", f"{mine['name']} {mine['type']} vs {a.name} {a.type}")
    if not ok:
        return
    if a.type == onnx.AttributeProto.FLOAT:
        report(np.float32(mine["f"]) == np.float32(a.f), f"{what} attr {a.name} f", f"{mine['f']} vs {a.f}")
    elif a.type == onnx.AttributeProto.INT:
        report(mine["i"] == a.i, f"{what} attr {a.name} i", f"{mine['i']} vs {a.i}")
    elif a.type == onnx.AttributeProto.STRING:
        report(mine["s"] == a.s.decode("utf-8", "replace"), f"{what} attr {a.name} s")
    elif a.type == onnx.AttributeProto.INTS:
        report(mine["ints"] == list(a.ints), f"{what} attr {a.name} ints", f"{mine['ints']} vs {list(a.ints)}")
    elif a.type == onnx.AttributeProto.FLOATS:
        report(np.array_equal(np.float32(mine["floats"]), np.float32(list(a.floats))), f"{what} attr {a.name} floats")
    elif a.type == onnx.AttributeProto.STRINGS:
        report(mine["strings"] == [s.decode() for s in a.strings], f"{what} attr {a.name} strings")
    elif a.type == onnx.AttributeProto.TENSOR:
        compare_tensor(f"{what} attr {a.name}", mine["t"], a.t, check_data)
    elif a.type == onnx.AttributeProto.GRAPH:
        compare_graph(f"{what} attr {a.name}", mine["g"], a.g, check_data)


def compare_graph(what, mine, g, check_data=True):
    init_names = {t.name for t in g.initializer}
    report(mine["structure_problems"] == 0, f"{what} structure", str(mine["structure_problems"]))
    report(mine["node_count"] == len(g.node), f"{what} node count", f"{mine['node_count']} vs {len(g.node)}")
    hist = {}
    for n in g.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    report(mine["ops"] == hist, f"{what} op histogram", f"{mine['ops']} vs {hist}")
    real_inputs = []
    for vi in g.input:
        if vi.name not in init_names and vi.name not in [r.name for r in real_inputs]:
            real_inputs.append(vi)
    report(len(mine["inputs"]) == len(real_inputs), f"{what} input count")
    for m, vi in zip(mine["inputs"], real_inputs):
        dtype, rank, dims = dim_view(vi.type)
        report(m["name"] == vi.name and m["dtype"] == dtype and m["rank"] == rank and m["dims"] == dims,
               f"{what} input {vi.name}", f"{m} vs {dtype} {rank} {dims}")
    report(len(mine["outputs"]) == len(g.output), f"{what} output count")
    for m, vi in zip(mine["outputs"], g.output):
        dtype, rank, dims = dim_view(vi.type)
        ok = m["name"] == vi.name and m["dtype"] == dtype
        if rank >= 0 and vi.name not in init_names:
            ok = ok and m["rank"] == rank and m["dims"] == dims
        report(ok, f"{what} output {vi.name}", f"{m} vs {dtype} {rank} {dims}")
    report(mine["initializer_count"] == len(g.initializer), f"{what} initializer count")
    total = sum(len(tensor_bytes(t)) for t in g.initializer) if check_data else mine["initializer_bytes"]
    report(mine["initializer_bytes"] == total, f"{what} initializer bytes", f"{mine['initializer_bytes']} vs {total}")
    by_name = {t["name"]: t for t in mine["initializers"]}
    for t in g.initializer:
        if t.name in by_name:
            compare_tensor(f"{what} initializer", by_name[t.name], t, check_data)
        else:
            report(False, f"{what} initializer {t.name} missing")
    for i, (mn, n) in enumerate(zip(mine["nodes"], g.node)):
        domain = "" if n.domain in ("", "ai.onnx") else n.domain
        ok = mn["op"] == n.op_type and mn["domain"] == domain and mn["inputs"] == list(n.input) and \
            mn["outputs"] == list(n.output) and len(mn["attrs"]) == len(n.attribute)
        report(ok, f"{what} node[{i}] {n.op_type}", f"{mn['inputs']} {mn['outputs']} vs {list(n.input)} {list(n.output)}")
        if ok:
            for ma, a in zip(mn["attrs"], n.attribute):
                compare_attr(f"{what} node[{i}]", ma, a, check_data)


def compare_model(what, path, extra_args=(), check_data=True):
    rc, out, err = run(*extra_args, path)
    report(rc == 0, f"{what} loads", err.strip())
    if rc != 0:
        return None
    mine = json.loads(out)
    model = onnx.load(path, load_external_data=True)
    default_opset = 0
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx"):
            default_opset = op.version
    report(mine["ir_version"] == model.ir_version, f"{what} ir_version")
    report(mine["opset"] == default_opset, f"{what} opset", f"{mine['opset']} vs {default_opset}")
    report(mine["producer_name"] == model.producer_name and mine["producer_version"] == model.producer_version,
           f"{what} producer")
    with open(path, "rb") as f:
        blob = f.read()
    report(mine["sha256"] == hashlib.sha256(blob).hexdigest(), f"{what} sha256")
    report(mine["file_size"] == len(blob), f"{what} file_size")
    compare_graph(what, mine["graph"], model.graph, check_data)
    return mine


def expect_failure(what, path, code=None, must_mention=None, extra_args=()):
    rc, out, err = run(*extra_args, path)
    ok = rc == 1 and err.startswith("error")
    if code is not None:
        ok = ok and f"(code {code})" in err
    if must_mention:
        ok = ok and must_mention in err
    report(ok, what, f"rc={rc} stderr={err.strip()[:600]}")
    return err


# ----------------------------------------------------------------- real models
def test_real_models():
    for path in MODELS:
        name = os.path.basename(path)
        mine = compare_model(name, path)
        if mine:
            rc, out, err = run("--buffer", path)
            buf = json.loads(out) if rc == 0 else None
            report(buf is not None and buf["graph"] == mine["graph"] and buf["sha256"] == mine["sha256"],
                   f"{name} buffer load matches", err)
            # raw_data initializers are used in place, unless the protobuf
            # layout left them misaligned for their element type: those are
            # copied to aligned memory (and their mapped pages dropped)
            owned = {t["name"] for t in mine["graph"]["initializers"] if t["owned"]}
            model = onnx.load(path)
            blob = open(path, "rb").read()
            wrong = []
            for t in model.graph.initializer:
                if not t.HasField("raw_data") or len(t.raw_data) < 64 or blob.count(t.raw_data) != 1:
                    continue
                elem = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
                misaligned = blob.find(t.raw_data) % elem != 0
                if misaligned != (t.name in owned):
                    wrong.append(t.name)
            report(not wrong, f"{name} raw_data is zero-copy unless misaligned", ", ".join(wrong[:5]))


# ----------------------------------------------------------------- generated models
TYPED = [
    (TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64), (TensorProto.INT64, np.int64),
    (TensorProto.INT32, np.int32), (TensorProto.INT16, np.int16), (TensorProto.INT8, np.int8),
    (TensorProto.UINT8, np.uint8), (TensorProto.UINT16, np.uint16), (TensorProto.UINT32, np.uint32),
    (TensorProto.UINT64, np.uint64), (TensorProto.BOOL, np.bool_), (TensorProto.FLOAT16, np.float16),
]


def typed_initializers(raw):
    rng = np.random.default_rng(1)
    inits = []
    for i, (code, npt) in enumerate(TYPED):
        shape = [2, 3, (i % 3) + 1]
        if npt == np.bool_:
            arr = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif np.issubdtype(npt, np.integer):
            info = np.iinfo(npt)
            arr = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(npt)
            arr.flat[0] = info.min
            arr.flat[1] = info.max
        else:
            arr = (rng.standard_normal(shape) * 10).astype(npt)
        name = f"w_{np.dtype(npt).name}"
        if raw:
            t = numpy_helper.from_array(arr, name)
        else:
            vals = arr.flatten()
            if npt == np.float16:
                vals = vals.view(np.uint16)
            t = helper.make_tensor(name, code, shape, vals.tolist(), raw=False)
        inits.append(t)
    # scalar and empty tensors
    inits.append(helper.make_tensor("scalar_f", TensorProto.FLOAT, [], [3.5]))
    inits.append(helper.make_tensor("empty_i64", TensorProto.INT64, [0, 4], []))
    return inits


def save(model, dir_, name, **kw):
    path = os.path.join(dir_, name)
    onnx.save_model(model, path, **kw)
    return path


def identity_model(inits, ir_version=8, opset=13, extra_nodes=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, None])
    nodes = [helper.make_node("Identity", ["x"], ["y"], name="id")] + list(extra_nodes)
    outputs = [y] + [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                     for n in extra_nodes for o in n.output if o]
    graph = helper.make_graph(nodes, "g", [x], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="facegraph-test", producer_version="1.2")
    model.ir_version = ir_version
    return model


def test_generated(tmp):
    for raw in (False, True):
        path = save(identity_model(typed_initializers(raw)), tmp, f"typed_{raw}.onnx")
        mine = compare_model(f"typed initializers raw={raw}", path)
        if mine and not raw:
            report(all(t["owned"] or t["nbytes"] == 0 for t in mine["graph"]["initializers"]),
                   "typed initializers are decoded into owned buffers")

    # IR versions 4..10 and several opsets
    for ir in range(4, 11):
        path = save(identity_model([], ir_version=ir, opset=9 + ir), tmp, f"ir{ir}.onnx")
        compare_model(f"ir_version {ir}", path)

    # inputs listing their initializers (old exporters): not graph inputs
    w = numpy_helper.from_array(np.ones((3,), np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    wi = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x, wi], [y], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 3
    mine = compare_model("initializer listed as input", save(m, tmp, "init_input.onnx"))
    if mine:
        report([i["name"] for i in mine["graph"]["inputs"]] == ["x"], "initializer excluded from inputs")

    # Constant nodes with each kind of value attribute; optional empty input
    consts = [
        helper.make_node("Constant", [], ["c_t"], value=numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3))),
        helper.make_node("Constant", [], ["c_f"], value_float=2.5),
        helper.make_node("Constant", [], ["c_fs"], value_floats=[1.0, -2.0, 3.25]),
        helper.make_node("Constant", [], ["c_i"], value_int=-7),
        helper.make_node("Constant", [], ["c_is"], value_ints=[1, -2, 1 << 40]),
        helper.make_node("Constant", [], ["c_s"], value_string="hello"),
        helper.make_node("Constant", [], ["c_t16"], value=helper.make_tensor("h", TensorProto.FLOAT16, [2], [0x3c00, 0xc000])),
        helper.make_node("Clip", ["c_t", "", "c_f"], ["clipped"]),
        helper.make_node("Resize", ["c_t", "", "c_fs"], ["resized"], mode="nearest", coordinate_transformation_mode="asymmetric"),
        helper.make_node("Split", ["c_t"], ["s0", "", "s2"], axis=1),
    ]
    mine = compare_model("Constant nodes", save(identity_model([], extra_nodes=consts), tmp, "constants.onnx"))
    if mine:
        types = [n["attrs"][0]["type"] for n in mine["graph"]["nodes"][1:8]]
        report(types == [4, 1, 6, 2, 7, 3, 4], "Constant attribute types", str(types))
        clip = mine["graph"]["nodes"][8]
        report(clip["inputs"] == ["c_t", "", "c_f"], "empty input name is -1")

    # If with subgraphs that read outer values; Loop body
    outer_w = numpy_helper.from_array(np.full((3,), 2.0, np.float32), "outer_w")
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "outer_w"], ["t_out"])], "then",
                               [], [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [3])])
    else_g = helper.make_graph([helper.make_node("Add", ["x", "mid"], ["e_out"])], "else",
                               [], [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, [3])])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "outer_w"], ["acc_next"]), helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_next", TensorProto.FLOAT, [3])])
    nodes = [
        helper.make_node("Neg", ["x"], ["mid"]),
        helper.make_node("ReduceSum", ["x"], ["sum"], keepdims=0),
        helper.make_node("Greater", ["sum", "zero"], ["flag"]),
        helper.make_node("If", ["flag"], ["y"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Loop", ["trip", "", "x"], ["looped"], body=body),
    ]
    g = helper.make_graph(nodes, "main", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3]),
                           helper.make_tensor_value_info("looped", TensorProto.FLOAT, [3])],
                          [outer_w, numpy_helper.from_array(np.float32(0), "zero"),
                           numpy_helper.from_array(np.int64(3), "trip")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    mine = compare_model("If/Loop subgraphs", save(m, tmp, "if.onnx"))
    if mine:
        if_node = mine["graph"]["nodes"][3]
        branches = {a["name"]: a["g"] for a in if_node["attrs"]}
        then_outer = sorted(branches["then_branch"]["outer"])
        else_outer = sorted(branches["else_branch"]["outer"])
        body_outer = sorted(mine["graph"]["nodes"][4]["attrs"][0]["g"]["outer"])
        report(then_outer == ["outer_w", "x"] and else_outer == ["mid", "x"] and body_outer == ["outer_w"],
               "outer values in subgraphs", f"{then_outer} {else_outer} {body_outer}")

    # external data (one file) and a second model with one file per tensor
    big = [numpy_helper.from_array(np.random.default_rng(2).standard_normal((64, 33)).astype(np.float32), f"big{i}")
           for i in range(3)] + [numpy_helper.from_array(np.arange(100, dtype=np.int64), "ids")]
    ext_dir = os.path.join(tmp, "ext")
    os.makedirs(ext_dir)
    path = save(identity_model(big), ext_dir, "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                location="weights.bin", size_threshold=0)
    mine = compare_model("external data (one file)", path)
    if mine:
        report(mine["n_maps"] == 2, "external data mapped once", str(mine["n_maps"]))
    ext2 = os.path.join(tmp, "ext2")
    os.makedirs(ext2)
    path2 = save(identity_model(big), ext2, "ext2.onnx", save_as_external_data=True, all_tensors_to_one_file=False,
                 size_threshold=0)
    compare_model("external data (file per tensor)", path2)
    compare_model("external data through a relative path", os.path.relpath(path2))
    os.remove(os.path.join(ext_dir, "weights.bin"))
    expect_failure("external data file missing", path, code=2, must_mention="weights.bin")
    with open(os.path.join(ext_dir, "weights.bin"), "wb") as f:
        f.write(b"\0" * 100)
    expect_failure("external data file truncated", path, code=4, must_mention="truncated")
    # location escaping the directory
    m = identity_model([numpy_helper.from_array(np.ones(4, np.float32), "w")])
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    p = os.path.join(tmp, "escape.onnx")
    with open(p, "wb") as f:
        f.write(m.SerializeToString())
    expect_failure("external data outside the model directory", p, code=4, must_mention="outside")

    # rank above FG_MAX_RANK
    m = identity_model([numpy_helper.from_array(np.ones([1] * 9, np.float32), "r9")])
    expect_failure("rank 9 initializer", save(m, tmp, "rank9.onnx"), code=5, must_mention="dimensions")
    # unsupported dtype
    m = identity_model([helper.make_tensor("bf", TensorProto.BFLOAT16, [2], [1, 2])])
    expect_failure("bfloat16 initializer", save(m, tmp, "bf16.onnx"), code=5, must_mention="bfloat16")
    # raw_data length mismatch
    m = identity_model([numpy_helper.from_array(np.ones(4, np.float32), "w")])
    m.graph.initializer[0].raw_data = b"\0" * 15
    expect_failure("raw_data length mismatch", save(m, tmp, "rawlen.onnx"), code=4, must_mention="initializer[0]")
    # typed-field count mismatch
    short = helper.make_tensor("w", TensorProto.INT64, [3], [1, 2, 3])
    short.dims[0] = 5
    m = identity_model([short])
    expect_failure("typed data count mismatch", save(m, tmp, "count.onnx"), code=4, must_mention="'w'")


# ----------------------------------------------------------------- serialized tensors
def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint((field << 3) | wire)


def test_tensors(tmp):
    # ONNX backend test data
    pbs = sorted(glob.glob("/usr/include/onnx/backend/test/data/node/*/test_data_set_0/*.pb"))
    random.Random(5).shuffle(pbs)
    checked = 0
    for pb in pbs:
        t = TensorProto()
        try:
            with open(pb, "rb") as f:
                t.ParseFromString(f.read())
        except Exception:
            continue
        if not t.dims and not t.raw_data and not t.float_data and not t.int64_data and not t.int32_data:
            if t.data_type == 0:
                continue  # sequences / optionals stored as other protos
        supported = t.data_type in [c for c, _ in TYPED] and len(t.dims) <= 8 and not t.HasField("segment")
        rc, out, err = run("--tensor", pb)
        if supported:
            report(rc == 0, f"tensor {pb}", err)
            if rc == 0:
                compare_tensor(pb, json.loads(out), t)
        else:
            report(rc == 1, f"tensor {pb} unsupported fails cleanly", f"rc={rc} {err}")
        checked += 1
        if checked >= 150:
            break
    # hand-encoded: unpacked repeated fields, dims split across packed and unpacked
    vals = [1, -2, 3, 1 << 40, -(1 << 50), 0]
    blob = key(1, 0) + varint(2) + key(1, 2) + bytes([1]) + varint(3)  # dims: 2 unpacked, then packed [3]
    blob += key(2, 0) + varint(TensorProto.INT64)
    for v in vals:
        blob += key(7, 0) + varint(v)
    blob += key(8, 2) + varint(1) + b"u"
    p = os.path.join(tmp, "unpacked.pb")
    with open(p, "wb") as f:
        f.write(blob)
    rc, out, err = run("--tensor", p)
    ok = rc == 0
    if ok:
        j = json.loads(out)
        ok = j["dims"] == [2, 3] and j["dtype"] == 7 and j["sha256"] == digest(np.array(vals, np.int64).tobytes())
    report(ok, "unpacked int64_data and mixed dims", f"{rc} {out} {err}")
    fl = [1.5, -2.25, 3.0]
    blob = key(1, 0) + varint(3) + key(2, 0) + varint(1)
    blob += key(4, 5) + np.float32(fl[0]).tobytes()
    blob += key(4, 2) + varint(8) + np.array(fl[1:], np.float32).tobytes()
    with open(p, "wb") as f:
        f.write(blob)
    rc, out, err = run("--tensor", p)
    ok = rc == 0 and json.loads(out)["sha256"] == digest(np.array(fl, np.float32).tobytes())
    report(ok, "mixed packed/unpacked float_data", f"{rc} {out} {err}")


# ----------------------------------------------------------------- corrupt files
def test_corrupt(tmp):
    expect_failure("missing file", os.path.join(tmp, "does_not_exist.onnx"), code=2, must_mention="does_not_exist")
    expect_failure("directory", tmp, code=3, must_mention="directory")
    empty = os.path.join(tmp, "empty.onnx")
    open(empty, "wb").close()
    expect_failure("empty file", empty, code=4, must_mention="empty")
    rng = random.Random(7)
    for i in range(8):
        p = os.path.join(tmp, f"random{i}.onnx")
        with open(p, "wb") as f:
            f.write(bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 7, 100, 5000, 70000]))))
        expect_failure(f"random bytes #{i}", p, must_mention=f"random{i}.onnx")
    with open(os.path.join(tmp, "text.onnx"), "w") as f:
        f.write("this is not a model\n" * 50)
    expect_failure("text file", os.path.join(tmp, "text.onnx"), code=4)
    srcs = [m for m in MODELS if "yunet" in m or "pfld" in m][:2] or MODELS[:2]
    for src in srcs:
        with open(src, "rb") as f:
            blob = f.read()
        for frac in (0.0001, 0.01, 0.1, 0.33, 0.5, 0.77, 0.999):
            cut = max(1, int(len(blob) * frac))
            p = os.path.join(tmp, f"trunc_{cut}.onnx")
            with open(p, "wb") as f:
                f.write(blob[:cut])
            err = expect_failure(f"{os.path.basename(src)} truncated at {cut}", p, code=4, must_mention="byte")
        report("past the end" in err or "runs past" in err, "truncation message says where", err[:300])
        rc, _, err = run(p)
        report(os.path.basename(p) in err, "message names the file")
        # byte flips: must load or fail cleanly, never crash
        crashes = 0
        for i in range(40 if not USE_VALGRIND else 8):
            mutated = bytearray(blob)
            for _ in range(rng.choice([1, 4, 32])):
                pos = rng.randrange(min(len(mutated), 40000))
                mutated[pos] = rng.getrandbits(8)
            p = os.path.join(tmp, "flip.onnx")
            with open(p, "wb") as f:
                f.write(mutated)
            rc, _, err = run(p)
            if rc not in (0, 1) or (rc == 1 and not err.startswith("error")):
                crashes += 1
                print(f"  flip case rc={rc}: {err[:300]}")
        report(crashes == 0, f"{os.path.basename(src)} byte flips never crash", f"{crashes} crashes")


def main():
    if not os.path.exists(BINARY):
        print(f"{BINARY} not found; build it with make")
        return 2
    with tempfile.TemporaryDirectory(prefix="fg_onnx_reader_") as tmp:
        test_real_models()
        test_generated(tmp)
        test_tensors(tmp)
        test_corrupt(tmp)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
