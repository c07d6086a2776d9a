"""The catalog's plain lines, read in C, read as the careful reader reads them: the same
images (references, layers, digests, layer sizes), the same catalog (platforms, lookups by
digest), and every line the fast path refuses still read, or refused, word for word as the
careful reader does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastmatch as fm
from fastmatch.errors import InputFileError
from fastmatch.imageref import parse_reference
from fastmatch.inputs._fastcatalog import plain_reference_name
from fastmatch.inputs.catalog import Catalog, _parse_line, catalog_from_documents
from fastmatch.model import Image

D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")
M1 = "sha256:" + "d" * 64


def _doc(ref: object, layers: list[tuple[object, object]], **extra: object) -> dict[str, Any]:
    return {"ref": ref, **extra, "layers": [{"digest": d, "size": s} for d, s in layers]}


def _careful(docs: list[object]) -> Catalog | str:
    """What the careful reader alone makes of these documents: the catalog, or the error."""
    catalog = Catalog()
    first: dict[tuple[str, str | None], tuple[int, Image]] = {}
    try:
        for number, doc in enumerate(docs, 1):
            platform, image = _parse_line(doc, f"catalog: document {number}")
            seen = first.get((image.ref, platform))
            if seen is not None:
                if seen[1] != image:
                    on = f" for {platform}" if platform is not None else ""
                    raise InputFileError(
                        f"catalog: document {number}: image {image.ref}{on} already listed on "
                        f"document {seen[0]} with other content")
                continue
            first[(image.ref, platform)] = (number, image)
            catalog.add(image, platform=platform)
    except InputFileError as exc:
        return str(exc)
    return catalog


def _read(docs: list[object]) -> Catalog | str:
    try:
        return catalog_from_documents(docs)
    except InputFileError as exc:
        return str(exc)


def _assert_same(docs: list[object]) -> None:
    fast, careful = _read(docs), _careful(docs)
    if isinstance(careful, str) or isinstance(fast, str):
        assert fast == careful
        return
    assert [(p, i.ref, i.layers, i.digest) for p, i in fast.entries()] == \
        [(p, i.ref, i.layers, i.digest) for p, i in careful.entries()]
    for (_, got), (_, want) in zip(fast.entries(), careful.entries(), strict=True):
        assert got == want and hash(got) == hash(want)
        assert dict(got.layer_sizes()) == dict(want.layer_sizes())
        assert got.layer_set == want.layer_set and got.size == want.size
        assert got.keys == want.keys and got.layers_known == want.layers_known
        assert got.pseudo_keys == want.pseudo_keys
        assert type(got.layer_sizes()) is type(want.layer_sizes())
    for _, image in careful.entries():
        for ref in {image.ref, *image.keys}:
            assert fast.entry(ref) == careful.entry(ref)
            assert fast.platforms(ref) == careful.platforms(ref)
    assert len(fast) == len(careful)


@pytest.mark.parametrize(
    "docs",
    [
        pytest.param([_doc("docker.io/library/nginx:1.25", [(D1, 10), (D2, 20)], digest=M1)],
                     id="plain"),
        pytest.param([_doc("nginx", [(D1, 10)], digest=M1)], id="a short reference"),
        pytest.param([_doc("index.docker.io/library/nginx:1", [(D1, 10)])], id="legacy host"),
        pytest.param([_doc("docker.io/nginx:1", [(D1, 10)])], id="official, no library/"),
        pytest.param([_doc("Localhost:5000/app:1", [(D1, 10)])], id="upper-case host"),
        pytest.param([_doc("localhost:5000/app:1", [(D1, 10)], digest=M1)], id="a port"),
        pytest.param([_doc(f"docker.io/library/busybox@{M1}", [(D1, 10)])],
                     id="a digest reference"),
        pytest.param([_doc(f"busybox:1@{M1}", [(D1, 10)], digest=M1)],
                     id="tag and digest"),
        pytest.param([_doc(f"busybox@{M1}", [(D1, 10)], digest=D2)],
                     id="a digest reference with another manifest digest"),
        pytest.param([_doc("docker.io/library/alpine:3", [(D1, 10)], platform=p)
                      for p in ("Linux/x86_64", "linux/amd64", "linux/arm64/v8",
                                "linux/aarch64")], id="platforms"),
        pytest.param([_doc("docker.io/library/alpine:3", [(D1, 10)], platform=" ")],
                     id="a blank platform"),
        pytest.param([_doc("docker.io/library/alpine:3", [(D1, 10)], platform="linux")],
                     id="a bad platform"),
        pytest.param([_doc("docker.io/library/alpine:3", [(D1, 10)], platform=7)],
                     id="a platform not a string"),
        pytest.param([_doc("docker.io/a/b:1", [(D1.upper(), 10)])], id="upper-case hex"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 10)]),
                      _doc("docker.io/a/c:1", [(D1.upper(), 10)])],
                     id="upper-case hex of a layer read before"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, True)])], id="a size as bool"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)]), _doc("docker.io/a/c:1", [(D1, True)])],
                     id="True after the size 1"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 10.0)])], id="a size as float"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, -1)])], id="a negative size"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 2**50 + 1)])], id="a size too large"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 2**70)])], id="a size beyond 64 bits"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 2**50)])], id="the largest size"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1), (D2, 2), (D1, 3)])],
                     id="a layer listed twice with two sizes"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1), (D2, 2), (D1, 1)])],
                     id="a layer listed twice with one size"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)]), _doc("docker.io/a/c:1", [(D1, 2)]),
                      _doc("docker.io/a/d:1", [(D1, 2), (D1, 1)])],
                     id="one digest, two sizes, in two images"),
        pytest.param([_doc("docker.io/a/b:1", [("sha512:" + "e" * 128, 1)])], id="sha512"),
        pytest.param([_doc("docker.io/a/b:1", [("sha256:" + "e" * 63, 1)])], id="short hex"),
        pytest.param([_doc("docker.io/a/b:1", [("sha256:" + "é" * 64, 1)])], id="not ASCII"),
        pytest.param([_doc("docker.io/a/b:1", [(7, 1)])], id="a digest not a string"),
        pytest.param([{"ref": "docker.io/a/b:1", "layers": [{"digest": D1}]}],
                     id="a layer without a size"),
        pytest.param([{"ref": "docker.io/a/b:1", "layers": [{"size": 1}]}],
                     id="a layer without a digest"),
        pytest.param([{"ref": "docker.io/a/b:1",
                       "layers": [{"digest": D1, "size": 1, "mediaType": "x", 3: 4}]}],
                     id="more keys in a layer"),
        pytest.param([{"ref": "docker.io/a/b:1", "layers": [[D1, 1]]}], id="a layer as a list"),
        pytest.param([{"ref": "docker.io/a/b:1", "layers": (({"digest": D1, "size": 1}),)}],
                     id="layers as a tuple"),
        pytest.param([{"ref": "docker.io/a/b:1", "layers": [], 1: 2}], id="a key not a string"),
        pytest.param([{"ref": "docker.io/a/b:1"}], id="no layers"),
        pytest.param([{"layers": []}], id="no ref"),
        pytest.param(["docker.io/a/b:1"], id="not an object"),
        pytest.param([_doc("docker.io/a/b:1", [])], id="no layers known"),
        pytest.param([_doc("docker.io/a/b:1", [], digest=M1)], id="no layers, a digest"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)], digest="sha256:" + "D" * 64)],
                     id="an upper-case manifest digest"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)], digest=None)], id="digest null"),
        pytest.param([_doc("docker.io/a/B:1", [(D1, 1)])], id="an upper-case path"),
        pytest.param([_doc(" docker.io/a/b:1", [(D1, 1)])], id="white space"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)]), _doc("docker.io/a/b:1", [(D1, 1)])],
                     id="listed twice, one content"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)]), _doc("a/b:1", [(D2, 1)])],
                     id="listed twice, other content"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)], platform="linux/arm64"),
                      _doc("a/b:1", [(D2, 1)], platform="linux/aarch64")],
                     id="listed twice for one platform, other content"),
        pytest.param([_doc("docker.io/a/b:1", [(D1, 1)], digest=M1),
                      _doc("docker.io/a/c:1", [(D1, 1)], digest=M1)],
                     id="two references, one manifest"),
    ],
)
def test_a_line_reads_as_the_careful_reader_reads_it(docs: list[object]) -> None:
    _assert_same(docs)


def test_a_catalog_read_fast_finds_images_by_any_spelling_and_by_digest() -> None:
    catalog = catalog_from_documents([
        _doc("docker.io/library/nginx:1.25", [(D1, 10), (D2, 20)], digest=M1),
        _doc("registry.example.com/team/app:v1", [(D2, 20), (D3, 5)]),
    ])
    nginx = Image("nginx:1.25", [(D1, 10), (D2, 20)], digest=M1)
    assert catalog.get("nginx:1.25") == nginx
    assert catalog.get(f"nginx@{M1}") == Image(f"nginx@{M1}", nginx.layers)
    assert catalog.get("registry.example.com/team/app:v1") == Image(
        "registry.example.com/team/app:v1", [(D2, 20), (D3, 5)])
    assert "redis" not in catalog and len(catalog) == 2


def test_nothing_is_kept_of_a_catalog_whose_last_line_is_bad() -> None:
    good = [_doc(f"docker.io/a/b:{n}", [(D1, 1)]) for n in range(50)]
    with pytest.raises(InputFileError, match=r"^catalog: document 51: layers\[0\]\.size: "):
        catalog_from_documents([*good, _doc("docker.io/a/c:1", [(D1, False)])])


# -- generated lines ---------------------------------------------------------------

_HEX = "0123456789abcdef"
_digests = st.one_of(
    st.sampled_from([D1, D2, D3]),
    st.text(_HEX, min_size=64, max_size=64).map(lambda h: "sha256:" + h),
    st.text(_HEX + "ABCDEFg", min_size=62, max_size=66).map(lambda h: "sha256:" + h),
    st.sampled_from(["sha512:" + "e" * 128, "md5:abc", "", "sha256:"]),
    st.integers(), st.none(),
)
_sizes = st.one_of(
    st.sampled_from([0, 1, 10, 20, 2**50, 2**50 + 1, -1, True, False, 1.0, "1", None, 2**64]),
    st.integers(min_value=0, max_value=2**50),
)
_component = st.from_regex(r"[a-z0-9]{1,3}([._-]{1,2}[a-z0-9]{1,3})?", fullmatch=True)
_hosts = st.sampled_from(["docker.io", "index.docker.io", "quay.io", "localhost",
                          "localhost:5000", "registry.example.com", "Reg.io", "a-.io",
                          "-a.io", "a..io", "a.io:", "a.io:x", "[::1]:5000", "x", ""])
_tags = st.one_of(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,4}", fullmatch=True),
                  st.sampled_from(["", ".x", "-x", "a" * 128, "a" * 129, "é"]))


@st.composite
def _references(draw: st.DrawFn) -> str:
    host = draw(_hosts)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    ref = f"{host}/{path}" if host else path
    tag = draw(st.none() | _tags)
    if tag is not None:
        ref += ":" + tag
    if draw(st.booleans()):
        ref += "@" + draw(st.sampled_from([M1, "sha256:" + "D" * 64, "sha256:abc"]))
    return draw(st.sampled_from([ref, ref, ref.upper(), " " + ref, ref + "/"]))


_layers = st.lists(st.tuples(_digests, _sizes), max_size=5)
_platforms = st.sampled_from([None, "linux/amd64", "Linux/x86_64", "linux/arm/v7",
                              "linux/arm", "", "linux", 5])


@st.composite
def _documents(draw: st.DrawFn) -> object:
    doc = _doc(draw(_references()), draw(_layers))
    if draw(st.booleans()):
        doc["digest"] = draw(st.sampled_from([M1, D2, None, "sha256:" + "D" * 64, 3]))
    platform = draw(_platforms)
    if platform is not None:
        doc["platform"] = platform
    return doc


@given(st.lists(_documents(), min_size=1, max_size=6))
def test_generated_lines_read_as_the_careful_reader_reads_them(docs: list[object]) -> None:
    _assert_same(docs)


@given(_references())
def test_a_reference_the_fast_path_takes_is_its_own_normalized_form(ref: str) -> None:
    name = plain_reference_name(ref)
    if name is None:
        return
    parsed = parse_reference(ref)  # accepted: it must parse
    assert (parsed.normalized, parsed.name, parsed.digest) == (ref, name, None)


@pytest.mark.parametrize("ref", [
    "docker.io/library/nginx:1.25", "registry.example.com/team050/mgqev9-15:v1.3",
    "localhost:5000/a/b:1", "localhost/a:latest", "quay.io/a__b/c--d.e_f:T_1.0-x",
])
def test_the_fast_path_takes_references_in_their_normalized_form(ref: str) -> None:
    assert plain_reference_name(ref) == parse_reference(ref).name


@pytest.mark.parametrize("ref", [
    "nginx:1", "docker.io/nginx:1", "index.docker.io/a/b:1", "quay.io/a/b", "Quay.io/a/b:1",
    f"quay.io/a/b@{M1}", "quay.io/a/b:1@" + M1, "[::1]:5000/a:1", "a.io/B:1", "a.io/a:" + "t" * 129,
])
def test_the_fast_path_leaves_other_references_to_the_parser(ref: str) -> None:
    assert plain_reference_name(ref) is None


def test_an_image_made_on_first_lookup_is_the_same_object_at_every_lookup() -> None:
    catalog = catalog_from_documents([_doc("docker.io/library/nginx:1.25", [(D1, 10)]),
                                      _doc("docker.io/library/redis:7", [(D1, 10), (D2, 1)])])
    first = catalog.get("nginx:1.25")
    assert first is catalog.get("docker.io/library/nginx:1.25")
    assert first is next(iter(catalog))
    assert first is not None and first.layer_sizes() is first.layer_sizes()
    assert [image.ref for image in catalog] == ["docker.io/library/nginx:1.25",
                                                "docker.io/library/redis:7"]


def test_an_image_the_fast_reader_made_answers_as_one_made_by_image() -> None:
    # Every derived slot of Image is set, identities included: a cache listing it and a
    # pod running it are encoded as for Image(...) itself.
    layer = {"digest": "sha256:" + "a" * 64, "size": 10}
    digest = "sha256:" + "b" * 64
    catalog = catalog_from_documents([
        {"ref": "registry.example.com/team/app:v1", "digest": digest, "layers": [layer]},
        {"ref": "registry.example.com/team/bare:v1", "layers": []},
    ])
    for ref, want in [
        ("registry.example.com/team/app:v1",
         fm.Image("registry.example.com/team/app:v1", [fm.Layer(layer["digest"], 10)],
                  digest=digest)),
        ("registry.example.com/team/bare:v1", fm.Image("registry.example.com/team/bare:v1")),
    ]:
        got = catalog.get(ref)
        assert got == want
        assert got.keys == want.keys and got.pseudo_keys == want.pseudo_keys
        assert dict(got.layer_sizes()) == dict(want.layer_sizes())
        assert got.layer_set == want.layer_set
