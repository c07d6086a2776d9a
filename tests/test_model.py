"""Model objects are validated on construction (SPEC §1).

What a user notices: the accepted spellings (layer tuples and mappings,
image strings, phase names in any case, times as datetime / epoch / ISO
strings) are read the same way, and every bad value is refused with an error
that names the culprit: the digest, the image, the cache id, the field.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fastmatch.digest import is_digest, validate_digest
from fastmatch.errors import (
    FastmatchError,
    InvalidDigestError,
    InvalidReferenceError,
    ValidationError,
)
from fastmatch.model import Image, ImageCache, Layer, Phase

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
MANIFEST = "sha256:" + "a" * 64
OTHER_MANIFEST = "sha256:" + "b" * 64
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def message(exc: pytest.ExceptionInfo[BaseException]) -> str:
    return str(exc.value)


# --- digests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digest",
    [
        D1,
        "sha512:" + "f" * 128,
        # OCI's grammar admits other algorithms and encodings.
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    ],
)
def test_oci_digests_are_accepted(digest: str) -> None:
    assert is_digest(digest)
    assert validate_digest(digest) == digest
    assert Layer(digest, 1).digest == digest


@pytest.mark.parametrize(
    ("digest", "why"),
    [
        ("sha256:" + "1" * 63, "sha256 takes 64 hex characters, not 63"),
        ("sha512:" + "f" * 64, "sha512 takes 128 hex characters, not 64"),
        ("sha256:" + "A" * 64, "lowercase hex only"),
        ("SHA256:" + "1" * 64, "expected algorithm:encoded"),
        ("1" * 64, "expected algorithm:encoded"),
        ("sha256:", "expected algorithm:encoded"),
        (":" + "1" * 64, "expected algorithm:encoded"),
        ("", "expected algorithm:encoded"),
        (None, "must be a string, not NoneType"),
    ],
)
def test_a_bad_digest_is_named_and_explained(digest: Any, why: str) -> None:
    assert not is_digest(digest)
    with pytest.raises(InvalidDigestError) as caught:
        validate_digest(digest, "catalog.jsonl line 3")
    assert message(caught).startswith(f"catalog.jsonl line 3: invalid digest {digest!r}: ")
    assert why in message(caught)


# --- layers ---------------------------------------------------------------------------------


def test_a_layer_holds_its_digest_and_size() -> None:
    layer = Layer(D1, 1234)
    assert (layer.digest, layer.size) == (D1, 1234)
    assert Layer(D1, 0).size == 0


def test_a_layer_with_a_bad_digest_names_the_digest() -> None:
    with pytest.raises(InvalidDigestError, match="invalid digest 'sha256:abc'"):
        Layer("sha256:abc", 1)


@pytest.mark.parametrize("size", [-1, 1.5, 1.0, "12", None, True])
def test_a_layer_size_must_be_a_non_negative_integer(size: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        Layer(D1, size)
    assert D1 in message(caught)
    assert "size" in message(caught)
    assert repr(size) in message(caught) or str(size) in message(caught)


# --- images ---------------------------------------------------------------------------------


def test_an_image_reference_is_normalized() -> None:
    assert Image("nginx").ref == "docker.io/library/nginx:latest"
    assert Image("user/app:1").ref == "docker.io/user/app:1"
    assert Image(f"nginx:1.25@{MANIFEST}").ref == f"docker.io/library/nginx@{MANIFEST}"


def test_an_image_takes_its_manifest_digest_from_the_reference_or_the_argument() -> None:
    assert Image(f"nginx@{MANIFEST}").digest == MANIFEST
    assert Image("nginx:1.25", digest=MANIFEST).digest == MANIFEST
    assert Image(f"nginx@{MANIFEST}", digest=MANIFEST).digest == MANIFEST
    assert Image("nginx").digest is None


def test_a_manifest_digest_that_contradicts_the_reference_names_both() -> None:
    with pytest.raises(ValidationError) as caught:
        Image(f"nginx@{MANIFEST}", digest=OTHER_MANIFEST)
    assert f"image 'nginx@{MANIFEST}'" in message(caught)
    assert MANIFEST in message(caught) and OTHER_MANIFEST in message(caught)


def test_a_bad_manifest_digest_names_the_image() -> None:
    with pytest.raises(InvalidDigestError) as caught:
        Image("nginx:1.25", digest="sha256:xyz")
    assert "image 'nginx:1.25' manifest" in message(caught)
    assert "'sha256:xyz'" in message(caught)


def test_a_bad_reference_is_refused_with_the_reference_quoted() -> None:
    with pytest.raises(InvalidReferenceError, match=r"'Nginx'.*lowercase"):
        Image("Nginx")


@pytest.mark.parametrize(
    "layers",
    [
        [Layer(D1, 10), Layer(D2, 20)],
        [(D1, 10), (D2, 20)],
        [{"digest": D1, "size": 10}, {"digest": D2, "size": 20, "mediaType": "x"}],
        [Layer(D1, 10), (D2, 20)],
        ((d, s) for d, s in [(D1, 10), (D2, 20)]),
    ],
)
def test_layers_may_be_layers_pairs_or_mappings(layers: Any) -> None:
    image = Image("app", layers)
    assert image.layers == (Layer(D1, 10), Layer(D2, 20))
    assert image.layers_known
    assert image.size == 30


def test_a_layer_listed_twice_counts_once() -> None:
    image = Image("app", [(D1, 10), (D2, 20), (D1, 10)])
    assert image.layer_sizes() == {D1: 10, D2: 20}
    assert image.size == 30


def test_a_layer_listed_with_two_sizes_names_the_image_and_the_digest() -> None:
    with pytest.raises(ValidationError) as caught:
        Image("app:1", [(D1, 10), (D1, 11)])
    assert "image 'app:1'" in message(caught)
    assert D1 in message(caught)
    assert "10" in message(caught) and "11" in message(caught)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ((D1,), "a (digest, size) pair"),
        ((D1, 1, 2), "a (digest, size) pair"),
        ({"digest": D1}, "'digest' and 'size'"),
        ({"size": 1}, "'digest' and 'size'"),
        (42, "got 42"),
        (("sha256:abc", 1), "invalid digest 'sha256:abc'"),
        ((D1, -5), "size must be >= 0"),
    ],
)
def test_a_bad_layer_names_the_image_and_its_position(entry: Any, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Image("app:1", [(D2, 1), entry])
    assert message(caught).startswith("image 'app:1' layer 1: ")
    assert why in message(caught)


@pytest.mark.parametrize("layers", ["sha256:abc", b"bytes", None, 3])
def test_layers_that_are_not_a_sequence_name_the_image(layers: Any) -> None:
    with pytest.raises(ValidationError, match="image 'app:1': layers must be a sequence"):
        Image("app:1", layers)


def test_an_image_without_layers_is_one_empty_pseudo_layer_of_its_identity() -> None:
    image = Image("app:1")
    assert not image.layers_known
    assert image.size == 0
    assert list(image.layer_sizes().values()) == [0]
    assert image.key == "docker.io/library/app:1"
    pinned = Image("app:1", digest=MANIFEST)
    assert pinned.key == MANIFEST
    assert pinned.keys == ("docker.io/library/app:1", MANIFEST)
    assert pinned.layer_sizes() != image.layer_sizes()


# --- image caches ---------------------------------------------------------------------------


def test_an_image_cache_has_eci_defaults() -> None:
    before = datetime.now(timezone.utc)
    cache = ImageCache("imc-2ze5tm5gehgtiiga1234", ["nginx"])
    after = datetime.now(timezone.utc)
    assert cache.size_gib == 20
    assert cache.phase is Phase.READY and cache.ready
    assert before <= cache.created <= after
    assert cache.created.tzinfo is not None
    assert (cache.expires, cache.last_matched, cache.auto_created) == (None, None, False)
    assert (cache.arch, cache.os, cache.retention_days) == (None, None, None)
    assert cache.images == (Image("nginx"),)


def test_images_may_be_strings_or_images_and_one_string_is_one_image() -> None:
    cache = ImageCache("imc-1", ["nginx:1.25", Image("redis", [(D1, 1)])])
    assert [i.ref for i in cache.images] == [
        "docker.io/library/nginx:1.25",
        "docker.io/library/redis:latest",
    ]
    assert ImageCache("imc-1", "nginx").images == (Image("nginx"),)
    assert len(ImageCache("imc-1", [f"app{i}" for i in range(20)]).images) == 20


@pytest.mark.parametrize("count", [0, 21])
def test_a_cache_holds_1_to_20_images(count: int) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", [f"app{i}" for i in range(count)])
    assert message(caught) == (f"image cache imc-1: holds {count} images; a cache holds 1 to 20")


def test_a_bad_image_in_a_cache_names_the_cache_the_position_and_the_reference() -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", ["nginx", "Bad Image"])
    assert message(caught).startswith("image cache imc-1 image 1: ")
    assert "'Bad Image'" in message(caught)


@pytest.mark.parametrize("images", [None, 3, [3]])
def test_images_that_are_not_images_name_the_cache(images: Any) -> None:
    with pytest.raises(ValidationError, match="image cache imc-1"):
        ImageCache("imc-1", images)


@pytest.mark.parametrize("cache_id", ["", "  ", " imc-1", None, 7])
def test_a_cache_id_must_be_a_non_empty_string(cache_id: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache(cache_id, ["nginx"])
    assert "image cache id" in message(caught)
    assert repr(cache_id) in message(caught)


@pytest.mark.parametrize(
    ("value", "phase"),
    [
        ("Ready", Phase.READY),
        ("ready", Phase.READY),
        ("READY", Phase.READY),
        (" Ready ", Phase.READY),
        ("preparing", Phase.PREPARING),
        ("Creating", Phase.CREATING),
        ("FAILED", Phase.FAILED),
        ("updating", Phase.UPDATING),
        ("updatefailed", Phase.UPDATE_FAILED),
        ("UpdateFailed", Phase.UPDATE_FAILED),
        (Phase.FAILED, Phase.FAILED),
    ],
)
def test_phase_names_are_read_in_any_case(value: Any, phase: Phase) -> None:
    cache = ImageCache("imc-1", ["nginx"], phase=value)
    assert cache.phase is phase
    assert cache.ready == (phase is Phase.READY)


@pytest.mark.parametrize("value", ["Running", "", "Update-Failed", None, 1])
def test_an_unknown_phase_names_the_cache_and_the_value(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", ["nginx"], phase=value)
    assert message(caught).startswith(f"image cache imc-1 phase: unknown phase {value!r}")
    assert "Ready" in message(caught) and "UpdateFailed" in message(caught)


@pytest.mark.parametrize(
    "value",
    [
        T0,
        T0.replace(tzinfo=None),  # naive means UTC
        T0.astimezone(timezone(timedelta(hours=8))),
        int(T0.timestamp()),
        T0.timestamp(),
        "2024-03-01T12:00:00Z",
        "2024-03-01T12:00:00z",
        "2024-03-01T12:00:00+00:00",
        "2024-03-01T20:00:00+08:00",
        "2024-03-01T12:00:00",
        "2024-03-01 12:00:00",
        " 2024-03-01T12:00:00Z ",
    ],
)
def test_times_may_be_datetimes_epoch_seconds_or_iso_strings(value: Any) -> None:
    cache = ImageCache("imc-1", ["nginx"], created=value, expires=value, last_matched=value)
    assert cache.created == T0
    assert cache.expires == T0
    assert cache.last_matched == T0
    assert cache.created.utcoffset() is not None


@pytest.mark.parametrize("field", ["created", "expires", "last_matched"])
@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", True, [2024], 1e20, float("nan")])
def test_a_bad_time_names_the_cache_and_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", ["nginx"], **{field: value})
    assert message(caught).startswith(f"image cache imc-1 {field}: ")


@pytest.mark.parametrize("size", [20, 100, 32768])
def test_size_gib_between_20_and_32768_is_accepted(size: int) -> None:
    assert ImageCache("imc-1", ["nginx"], size_gib=size).size_gib == size


@pytest.mark.parametrize(
    ("size", "why"),
    [
        (19, "size_gib 19 is outside 20..32768"),
        (32769, "size_gib 32769 is outside 20..32768"),
        (0, "size_gib 0 is outside 20..32768"),
        ("30", "size_gib must be an integer, got '30'"),
        (30.0, "size_gib must be an integer, got 30.0"),
        (True, "size_gib must be an integer, got True"),
    ],
)
def test_a_bad_size_names_the_cache_and_the_field(size: Any, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", ["nginx"], size_gib=size)
    assert message(caught) == f"image cache imc-1: {why}"


@pytest.mark.parametrize("days", [0, -1, True, "3", 1.5])
def test_retention_days_must_be_a_positive_integer(days: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", ["nginx"], retention_days=days)
    assert message(caught) == (
        f"image cache imc-1: retention_days must be a positive integer, got {days!r}"
    )
    assert ImageCache("imc-1", ["nginx"], retention_days=1).retention_days == 1


@pytest.mark.parametrize("value", ["true", 1, None])
def test_auto_created_must_be_a_bool(value: Any) -> None:
    with pytest.raises(ValidationError, match="image cache imc-1: auto_created must be a bool"):
        ImageCache("imc-1", ["nginx"], auto_created=value)


def test_name_must_be_a_string() -> None:
    with pytest.raises(ValidationError, match="image cache imc-1: name must be a string"):
        ImageCache("imc-1", ["nginx"], name=None)  # type: ignore[arg-type]


def test_arch_and_os_are_lowercased_and_empty_means_unknown() -> None:
    cache = ImageCache("imc-1", ["nginx"], arch=" AMD64 ", os="Linux")
    assert (cache.arch, cache.os) == ("amd64", "linux")
    assert ImageCache("imc-1", ["nginx"], arch="", os=None).arch is None


@pytest.mark.parametrize("field", ["arch", "os"])
@pytest.mark.parametrize("value", ["   ", 64])
def test_a_bad_platform_names_the_cache_and_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", ["nginx"], **{field: value})
    assert message(caught).startswith(f"image cache imc-1 {field}: ")


def test_a_layer_with_two_sizes_across_images_names_the_cache_and_the_digest() -> None:
    with pytest.raises(ValidationError) as caught:
        ImageCache("imc-1", [Image("a", [(D1, 1)]), Image("b", [(D1, 2), (D3, 5)])])
    assert message(caught).startswith("image cache imc-1: ")
    assert D1 in message(caught)


def test_a_cache_knows_its_layers_and_the_identities_of_its_images() -> None:
    cache = ImageCache("imc-1", [Image("a", [(D1, 1), (D2, 2)]), Image("b", [(D2, 2), (D3, 3)])])
    real = {k: v for k, v in cache.layer_sizes().items() if is_digest(k)}
    assert real == {D1: 1, D2: 2, D3: 3}
    assert {image.ref for image in cache.images} == {
        "docker.io/library/a:latest",
        "docker.io/library/b:latest",
    }
    assert cache.by_reference == frozenset()  # every image's layers are known


def test_replace_returns_a_validated_copy() -> None:
    cache = ImageCache("imc-1", ["nginx"], created=T0)
    bigger = cache.replace(size_gib=40)
    assert (bigger.size_gib, cache.size_gib) == (40, 20)
    assert bigger.created == T0
    with pytest.raises(ValidationError, match="size_gib 5 is outside"):
        cache.replace(size_gib=5)
    with pytest.raises(ValidationError, match="unknown phase 'Gone'"):
        cache.replace(phase="Gone")


def test_model_errors_are_fastmatch_errors_and_value_errors() -> None:
    for build in (
        lambda: Layer("nope", 1),
        lambda: Image("Nope"),
        lambda: ImageCache("imc-1", []),
    ):
        with pytest.raises(FastmatchError):
            build()
        with pytest.raises(ValueError):
            build()
