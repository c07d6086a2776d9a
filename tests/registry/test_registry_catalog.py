"""The image catalog: written by resolve, read back whole or not at all, fed to matching."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from fastmatch.errors import InputFileError, ValidationError
from fastmatch.model import Image, ImageCache
from fastmatch.registry import Catalog, catalog_line, read_catalog, write_catalog

D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")
M1 = "sha256:" + "d" * 64


def test_line_format_is_the_specs() -> None:
    image = Image("nginx:1.25", [(D1, 10), (D2, 20)], digest=M1)
    assert json.loads(catalog_line(image)) == {
        "ref": "docker.io/library/nginx:1.25", "digest": M1,
        "layers": [{"digest": D1, "size": 10}, {"digest": D2, "size": 20}],
    }
    assert list(json.loads(catalog_line(image))) == ["ref", "digest", "layers"]


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    images = [Image("nginx:1.25", [(D1, 10)], digest=M1), Image("redis", [(D2, 5), (D3, 7)])]
    path = tmp_path / "catalog.jsonl"
    assert write_catalog(images, path) == 2
    assert list(read_catalog(path)) == images


def test_round_trip_through_a_stream() -> None:
    images = [Image("quay.io/app/x:1", [(D1, 1)])]
    buffer = io.StringIO()
    write_catalog(images, buffer)
    buffer.seek(0)
    assert list(read_catalog(buffer)) == images


def test_blank_lines_and_identical_duplicates_are_fine(tmp_path: Path) -> None:
    line = catalog_line(Image("nginx", [(D1, 1)]))
    path = tmp_path / "c.jsonl"
    path.write_text(f"\n{line}\n\n{line}\n")
    assert len(read_catalog(path)) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"layers": []}', "ref: missing"),
        ('{"ref": "Bad/Ref", "layers": []}', "ref: invalid image reference"),
        ('{"ref": "nginx", "digest": "sha256:xyz", "layers": []}', "digest: "),
        ('{"ref": "nginx"}', "layers: missing"),
        ('{"ref": "nginx", "layers": [5]}', "layers[0]: "),
        (f'{{"ref": "nginx", "layers": [{{"digest": "{D1}"}}]}}', "layers[0].size: "),
        (f'{{"ref": "nginx", "layers": [{{"digest": "{D1}", "size": -1}}]}}',
         "layers[0].size: "),
        (f'{{"ref": "nginx", "layers": [{{"digest": "{D1}", "size": true}}]}}',
         "layers[0].size: "),
        ('{"ref": "nginx", "layers": [{"digest": "sha256:zz", "size": 1}]}',
         "layers[0].digest: "),
        (f'{{"ref": "nginx@{M1}", "digest": "{D1}", "layers": []}}', "differs"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "catalog.jsonl"
    good = catalog_line(Image("redis", [(D2, 1)]))
    path.write_text(f"{good}\n{line}\n{good}\n")
    with pytest.raises(InputFileError) as caught:
        read_catalog(path)
    assert str(caught.value).startswith(f"{path}: line 2: ")
    assert message in str(caught.value)


BIG = 2**70


@pytest.mark.parametrize(
    ("layers", "field", "shown"),
    [
        (f'[{{"digest": "{D1}", "size": 1}}, {{"digest": "{D2}", "size": {BIG}}}]',
         "layers[1].size", str(BIG)),
        (f'[{{"digest": "{D1}", "size": {2**50 + 1}}}]', "layers[0].size", str(2**50 + 1)),
        (f'[{{"digest": "{D1}", "size": -5}}]', "layers[0].size", "-5"),
        (f'[{{"digest": "{D1}", "size": 1.5}}]', "layers[0].size", "1.5"),
        (f'[{{"digest": "{D1}", "size": "12"}}]', "layers[0].size", "'12'"),
        (f'[{{"digest": "{D1}", "size": 1e3}}]', "layers[0].size", "1000.0"),
    ],
)
def test_a_size_that_does_not_fit_names_file_line_and_field(
    tmp_path: Path, layers: str, field: str, shown: str
) -> None:
    path = tmp_path / "catalog.jsonl"
    good = catalog_line(Image("redis", [(D2, 1)]))
    path.write_text(f"{good}\n{good}\n{{\"ref\": \"nginx\", \"layers\": {layers}}}\n{good}\n")
    with pytest.raises(InputFileError) as caught:
        read_catalog(path)
    assert str(caught.value).startswith(f"{path}: line 3: {field}: ")
    assert shown in str(caught.value) and "(image nginx)" in str(caught.value)


@pytest.mark.parametrize("text", ["{not json", '{"ref": "nginx", "layers": [', "nginx:1.25",
                                  "[" * 100_000, "{\"ref\": 1" + "0" * 5000 + "}"])
def test_a_line_that_is_not_json_names_file_and_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text(catalog_line(Image("redis", [(D2, 1)])) + "\n" + text + "\n")
    with pytest.raises(InputFileError) as caught:
        read_catalog(path)
    assert str(caught.value).startswith(f"{path}: line 2: not valid JSON")


def test_conflicting_duplicates_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(catalog_line(Image("nginx", [(D1, 1)])) + "\n" +
                    catalog_line(Image("docker.io/library/nginx:latest", [(D1, 2)])) + "\n")
    with pytest.raises(InputFileError, match=r": line 2: image .* already listed on line 1"):
        read_catalog(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="cannot read catalog"):
        read_catalog(tmp_path / "absent.jsonl")


def test_lookup_by_any_spelling_and_by_digest() -> None:
    catalog = Catalog([Image("nginx:1.25", [(D1, 10)], digest=M1)])
    assert catalog.get("docker.io/library/nginx:1.25") is not None
    assert "nginx:1.25" in catalog and "nginx:1.26" not in catalog and "Bad/Ref" not in catalog
    by_digest = catalog.get(f"nginx@{M1}")
    assert by_digest == Image(f"nginx@{M1}", [(D1, 10)], digest=M1)
    assert catalog.image("redis").layers == ()


@pytest.mark.registry
def test_resolved_catalog_reads_back_equal_and_feeds_matching(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fastmatch.registry import RegistryConfig, Resolver

    host = world.plain.host
    refs = [f"{host}/app:1.0", f"{host}/app:1.1", f"{host}/multi:1.0", f"{host}/docker/app:1.0"]
    config = RegistryConfig.build(plain_http=[host], docker_config=False)
    with Resolver(config) as resolver:
        report = resolver.resolve_many(refs)
    assert report.ok
    path = tmp_path / "catalog.jsonl"
    write_catalog(report.images, path)
    catalog = read_catalog(path)
    assert list(catalog) == report.images

    fm = pytest.importorskip("fastmatch")
    if not hasattr(fm, "CacheIndex"):
        pytest.skip("fastmatch.CacheIndex is not built")
    index = fm.CacheIndex()
    index.upsert(ImageCache("imc-app10", [catalog.image(f"{host}/app:1.0")]))
    index.upsert(ImageCache("imc-multi", [catalog.image(f"{host}/multi:1.0")]))
    # docker/app:1.0 is app:1.0 converted to schema 2: another manifest, the same layers,
    # so the cache of app:1.0 serves it fully; app:1.1 shares only the base layer.
    result = index.match([catalog.image(f"{host}/docker/app:1.0")])
    assert (result.outcome, result.cache_id, result.full) == ("use", "imc-app10", 1)
    partial = index.match([catalog.image(f"{host}/app:1.1")],
                          fm.MatchPolicy(allow_partial=True))
    assert partial.cache_id in ("imc-app10", "imc-multi") and partial.full == 0
    assert partial.covered == catalog.image(f"{host}/app:1.1").layers[0].size


def test_one_reference_for_several_platforms(tmp_path: Path) -> None:
    amd = Image("nginx:1.25", [(D1, 10)], digest=M1)
    arm = Image("nginx:1.25", [(D2, 20)], digest=M1)
    path = tmp_path / "catalog.jsonl"
    path.write_text(catalog_line(amd, platform="linux/amd64") + "\n"
                    + catalog_line(arm, platform="Linux/aarch64") + "\n")
    assert json.loads(path.read_text().splitlines()[1])["platform"] == "linux/arm64"
    catalog = read_catalog(path)
    assert len(catalog) == 2
    assert catalog.get("nginx:1.25", platform="linux/arm64") == arm
    assert catalog.get("nginx:1.25", platform="linux/arm64/v8") == arm
    assert catalog.get("nginx:1.25", platform="linux/amd64") == amd
    assert catalog.get("nginx:1.25") == amd  # no platform asked: linux/amd64, as Docker
    assert catalog.get("nginx:1.25", platform="linux/s390x") is None  # never another's
    assert catalog.image("nginx:1.25", platform="linux/s390x").layers == ()
    assert catalog.get(f"nginx@{M1}", platform="linux/arm64") == Image(f"nginx@{M1}", [(D2, 20)],
                                                                       digest=M1)


def test_an_entry_without_platform_serves_any_and_an_only_entry_serves_no_platform() -> None:
    plain = Image("redis:7", [(D1, 1)])
    arm = Image("redis:7", [(D2, 2)])
    catalog = Catalog()
    catalog.add(arm, platform="linux/arm64")
    assert catalog.get("redis:7") == arm  # the only entry
    assert catalog.get("redis:7", platform="linux/amd64") is None
    catalog.add(plain)
    assert catalog.get("redis:7") == plain
    assert catalog.get("redis:7", platform="linux/amd64") == plain
    assert catalog.get("redis:7", platform="linux/arm64") == arm


def test_a_bad_platform_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    good = catalog_line(Image("redis", [(D2, 1)]))
    path.write_text(f'{good}\n{{"ref": "nginx", "platform": "arm64", "layers": []}}\n')
    with pytest.raises(InputFileError, match=r": line 2: platform: .*arm64"):
        read_catalog(path)


def test_platforms_that_all_hold_one_image_are_not_ambiguous() -> None:
    same = Image("busybox:1.36", [(D1, 1)])
    catalog = Catalog()
    catalog.add(same, platform="linux/arm64")
    catalog.add(same, platform="linux/s390x")
    assert catalog.get("busybox:1.36") == same  # no platform asked, nothing to choose
    catalog.add(Image("busybox:1.36", [(D2, 2)]), platform="linux/s390x")
    assert catalog.get("busybox:1.36") is None  # they differ and none is linux/amd64
    assert catalog.get("busybox:1.36", platform="linux/arm64") == same


@pytest.mark.parametrize(
    ("given", "written"),
    [("Linux/x86_64", "linux/amd64"), ("linux/aarch64/v8", "linux/arm64"),
     ("linux/arm", "linux/arm/v7"), ("linux/arm/7", "linux/arm/v7"),
     ("windows/amd64", "windows/amd64")],
)
def test_a_platform_is_written_and_looked_up_in_one_spelling(given: str, written: str) -> None:
    image = Image("app:1", [(D1, 1)])
    assert json.loads(catalog_line(image, platform=given))["platform"] == written
    catalog = read_catalog(io.StringIO(catalog_line(image, platform=given) + "\n"))
    assert catalog.get("app:1", platform=written) == image
    assert catalog.get("app:1", platform=given) == image


def test_an_empty_platform_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text('{"ref": "nginx", "platform": " ", "layers": []}\n')
    with pytest.raises(InputFileError, match=r": line 1: platform: expected os/arch"):
        read_catalog(path)


def test_a_bad_platform_asked_for_is_an_error_even_for_an_unknown_reference() -> None:
    with pytest.raises(ValidationError, match="platform"):
        Catalog().get("nginx", platform="linux")


def test_text_that_is_not_utf8_names_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = catalog_line(Image("redis", [(D2, 1)])).encode() + b"\n\xff\xfe\n"
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
    with pytest.raises(InputFileError, match=r"^<stream>: not UTF-8"):
        read_catalog(stream)
    # Standard input decoded leniently (surrogateescape, as in a C locale) is still refused.
    lenient = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")
    monkeypatch.setattr("sys.stdin", lenient)
    with pytest.raises(InputFileError, match=r"^<stdin>: not UTF-8"):
        read_catalog("-")


def test_a_byte_order_mark_is_not_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + catalog_line(Image("redis", [(D2, 1)])).encode() + b"\n")
    assert [image.ref for image in read_catalog(path)] == ["docker.io/library/redis:latest"]
