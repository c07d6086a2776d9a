"""``fastmatch webhook``: its flags (SPEC §10) and the errors it gives before serving."""

from __future__ import annotations

import pytest

from fastmatch.cli import main


def test_help_names_the_flags_of_the_spec(capsys):
    with pytest.raises(SystemExit) as info:
        main(["webhook", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--kubeconfig", "--tls-cert", "--tls-key", "--host", "--port", "--catalog",
                 "--resolve", "--budget-ms"):
        assert flag in out


@pytest.mark.parametrize("bad", [["--budget-ms", "0"], ["--budget-ms", "fast"],
                                 ["--port", "70000"], ["--workers", "-1"]])
def test_bad_flags_exit_2(capsys, bad, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["webhook", "--tls-cert", "c", "--tls-key", "k", *bad])
    assert info.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_certificate_files_that_do_not_load_exit_2_naming_them(capsys, tmp_path):
    cert = tmp_path / "tls.crt"
    cert.write_text("not a certificate")
    code = main(["webhook", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "none.key")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--tls-cert" in err and str(cert) in err


def test_a_catalog_that_does_not_load_exits_2(capsys, pki, tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"ref": "Nginx"}\n')
    code = main(["webhook", "--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file),
                 "--catalog", str(catalog)])
    assert code == 2
    assert "catalog.jsonl" in capsys.readouterr().err
