"""The catalog reader's plain lines and careful lines read the same images and refuse
the same mistakes, whatever lines came before (a layer already read well is no excuse)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastmatch.errors import InputFileError
from fastmatch.inputs import read_catalog
from fastmatch.inputs.catalog import catalog_from_documents
from fastmatch.model import Image

D1, D2 = ("sha256:" + c * 64 for c in "ab")
S512 = "sha512:" + "e" * 128
M1 = "sha256:" + "d" * 64


def _line(ref: str, layers: list[tuple[object, object]], **extra: object) -> str:
    return json.dumps({"ref": ref, **extra,
                       "layers": [{"digest": d, "size": s} for d, s in layers]})


def test_lines_of_every_shape_read_as_the_images_they_describe(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join([
        _line("nginx:1.25", [(D1, 10), (D2, 20)], digest=M1),
        _line("redis", [(D1, 10), (S512, 3)]),  # a digest of another algorithm
        _line("quay.io/app/x:1", [(D2, 20), (D2, 20)]),  # one layer listed twice, one size
        _line(f"busybox@{M1}", [(D1, 10)]),  # by digest
        _line("alpine:3", [(D1, 10)], platform="Linux/x86_64"),
        _line("empty:1", []),
    ]) + "\n")
    catalog = read_catalog(path)
    assert list(catalog) == [
        Image("nginx:1.25", [(D1, 10), (D2, 20)], digest=M1),
        Image("redis", [(D1, 10), (S512, 3)]),
        Image("quay.io/app/x:1", [(D2, 20), (D2, 20)]),
        Image(f"busybox@{M1}", [(D1, 10)]),
        Image("alpine:3", [(D1, 10)]),
        Image("empty:1"),
    ]
    assert catalog.platforms("alpine:3") == ["linux/amd64"]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([(D1, True)], "layers[0].size: expected an integer"),
        ([(D1, 1.0)], "layers[0].size: expected an integer"),
        ([(D1, "1")], "layers[0].size: expected an integer"),
        ([(D2, 5), (D1, 1), (D1, 2)], "is listed with sizes 1 and 2"),
        ([(D1.upper(), 1)], "layers[0].digest: invalid digest"),
    ],
)
def test_a_bad_layer_is_refused_after_the_same_digest_was_read_well(
    tmp_path: Path, layers: list[tuple[object, object]], message: str
) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text(_line("redis", [(D1, 1)]) + "\n" + _line("nginx", layers) + "\n")
    with pytest.raises(InputFileError) as caught:
        read_catalog(path)
    assert str(caught.value).startswith(f"{path}: line 2: ")
    assert message in str(caught.value)


def test_parsed_documents_read_as_the_lines_that_hold_them(tmp_path: Path) -> None:
    lines = [_line("nginx:1.25", [(D1, 10)], digest=M1), _line("redis", [(D1, 10), (D2, 1)])]
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join(lines) + "\n")
    docs = [json.loads(line) for line in lines]
    assert list(catalog_from_documents(docs)) == list(read_catalog(path))
    with pytest.raises(InputFileError, match=r"^catalog: document 2: layers\[0\]\.size: "):
        catalog_from_documents([docs[0], {"ref": "x", "layers": [{"digest": D1, "size": -1}]}])
