"""What a user installs, or unpacks, is complete and self-consistent, and reads well on a
package index.

The sdist and the wheel are built once per module with `python -m build` (the wheel from the
sdist, as an index's installer would), unless PREDIBASE_DIST_DIR names a folder that
`make dist-check` already built them into (it runs `twine check --strict` on the same files).
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

import pytest

from tests.test_docs_snippets import EXTERNAL, INLINE_CODE_RE, LINK_RE, parse

ROOT = Path(__file__).resolve().parents[2]
DIST = "airflow-provider-predibase"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel)."""
    given = os.environ.get("PREDIBASE_DIST_DIR")
    if given:
        out = Path(given)
    else:
        out = tmp_path_factory.mktemp("dist")
        done = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def sdist_files(built: tuple[Path, Path]) -> dict[str, bytes]:
    """The sdist's files, by path below its top folder."""
    with tarfile.open(built[0]) as tar:
        return {
            member.name.partition("/")[2]: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


@pytest.fixture(scope="module")
def wheel_files(built: tuple[Path, Path]) -> dict[str, bytes]:
    with zipfile.ZipFile(built[1]) as whl:
        return {name: whl.read(name) for name in whl.namelist()}


@pytest.fixture(scope="module")
def wheel_metadata(wheel_files: dict[str, bytes]) -> Message:
    [name] = [n for n in wheel_files if n.endswith(".dist-info/METADATA")]
    return HeaderParser().parsestr(wheel_files[name].decode())


def relative_links(text: str) -> list[tuple[int, str]]:
    prose, _, _ = parse(text)
    return [
        (number, match["target"])
        for number, line in prose
        for match in LINK_RE.finditer(INLINE_CODE_RE.sub("", line))
        if not match["target"].startswith(EXTERNAL)
    ]


def files_under(folder: str) -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_sdist_carries_the_license_the_docs_and_the_examples_but_no_tests(
    sdist_files: dict[str, bytes],
):
    assert sdist_files["LICENSE"] == (ROOT / "LICENSE").read_bytes()
    for name in ("README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"):
        assert name in sdist_files, name
    missing = (files_under("docs") | files_under("dags_examples")) - set(sdist_files)
    assert missing == set()
    assert [name for name in sdist_files if name.startswith("tests/")] == []


def test_every_relative_link_in_the_sdist_leads_to_a_file_in_it(sdist_files: dict[str, bytes]):
    problems = []
    for page, content in sdist_files.items():
        if not page.endswith(".md"):
            continue
        for number, target in relative_links(content.decode()):
            path_part = target.partition("#")[0]
            linked = posixpath.normpath(posixpath.join(posixpath.dirname(page), path_part))
            if path_part and linked not in sdist_files:
                problems.append(f"{page} line {number}: {target}")
    assert problems == []


def test_wheel_carries_the_license_and_the_package_only(wheel_files: dict[str, bytes]):
    [license_file] = [n for n in wheel_files if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel_files[license_file] == (ROOT / "LICENSE").read_bytes()
    tops = {name.split("/")[0] for name in wheel_files}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"airflow_predibase"}


def test_license_is_the_full_apache_2_text():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) > 200


def test_metadata_names_license_classifiers_and_documentation(wheel_metadata: Message):
    assert wheel_metadata["Name"] == DIST
    assert wheel_metadata["License-Expression"] == "Apache-2.0"
    assert wheel_metadata.get_all("License-File") == ["LICENSE"]
    classifiers = wheel_metadata.get_all("Classifier") or []
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert any(c.startswith("Programming Language :: Python :: 3.") for c in classifiers)
    assert "predibase" in wheel_metadata["Keywords"]
    urls = dict(
        (label.strip(), url.strip())
        for label, _, url in (e.partition(",") for e in wheel_metadata.get_all("Project-URL"))
    )
    assert urls["Documentation"].startswith("https://")
    assert "airflow.apache.org" not in urls["Documentation"]
    assert wheel_metadata["Description-Content-Type"] == "text/markdown"
    assert wheel_metadata.get_payload().strip() == (ROOT / "README.md").read_text().strip()


def test_readme_has_no_link_that_breaks_off_a_checkout():
    """The README is the package's long description: an index renders it with no files
    beside it, so it names paths in plain text instead of linking to them."""
    assert relative_links((ROOT / "README.md").read_text()) == []


def test_readme_still_starts_with_the_two_commands():
    _, blocks, _ = parse((ROOT / "README.md").read_text())
    first = "\n".join(blocks[0].lines)
    assert first.startswith("make demo")
    assert "\nmake test" in first


def test_the_providers_page_links_to_the_documentation_url():
    """Airflow's Providers page links the package name to `documentation_url`; without one it
    falls back to an airflow.apache.org page that does not exist for this provider."""
    from importlib import metadata

    from airflow.providers_manager import ProvidersManager

    info = ProvidersManager().providers[DIST]
    if "documentation-url" not in info.data:
        pytest.skip("this Airflow does not read a provider's Documentation URL")
    documented = [
        url.strip()
        for label, _, url in (
            e.partition(",") for e in metadata.metadata(DIST).get_all("Project-URL")
        )
        if label.strip().lower() == "documentation"
    ]
    assert documented
    # Airflow 3.2 keeps the space after the label's comma; a browser trims it from an href.
    assert info.data["documentation-url"].strip() == documented[0]
