"""The packaging files agree with each other and with installer/app_info.py: app name, version, identifiers,
executables, icon paths and package file names. Fast: nothing is built.

The spec is executed for real, once per OS, with PyInstaller's build classes replaced by recorders, so what is
checked is what PyInstaller would be given, not the spec's text."""

from __future__ import annotations

import plistlib
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest
import yaml

from vsearch_app import __version__

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "installer"
sys.path.insert(0, str(INSTALLER))
import app_info  # noqa: E402

ISS = (INSTALLER / "windows" / "vsearch.iss").read_text(encoding="utf-8")
DMG_SCRIPT = (INSTALLER / "macos" / "make_dmg.sh").read_text(encoding="utf-8")
BUILD_YML = (REPO / ".github" / "workflows" / "build.yml").read_text(encoding="utf-8")
RELEASE_YML = (REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")

WINDOWS_SETUP = "VSearch-{v}-windows-x64-setup.exe"
MACOS_DMG = "VSearch-{v}-macos-arm64.dmg"
LINUX_ARCHIVE = "VSearch-{v}-linux-x86_64.tar.xz"


class Recorder:
    """Stands in for one of PyInstaller's build classes: keeps its arguments."""

    made: list[Recorder] = []

    def __init__(self, *args, **kwargs) -> None:
        self.kind = type(self).__name__
        self.args, self.kwargs = args, kwargs
        self.pure, self.scripts = [], []
        self.datas = [("torch/test/x.py", "", "DATA"), ("torch/bin/torch_shm_manager", "", "DATA"),
                      ("torch/bin/protoc", "", "DATA"), ("torch/include/ATen/a.h", "", "DATA"),
                      ("torch\\share\\cmake\\x.cmake", "", "DATA"), ("vsearch_app/resources/app.svg", "", "DATA")]
        self.binaries = [("torch/lib/libtorch_cpu.so", "", "BINARY"), ("torch/lib/libaoti_custom_ops.so", "", "BINARY"),
                         ("torch/lib/libbackend_with_compiler.so", "", "BINARY"),
                         ("torch/lib/libtorchbind_test.so", "", "BINARY"), ("torch/lib/libc10.so", "", "BINARY")]
        Recorder.made.append(self)


def _run_spec(platform: str, monkeypatch) -> dict[str, list[Recorder]]:
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda package: [f"{package}.cli.main"]
    hooks.collect_data_files = lambda package, includes=(): [("src/app.svg", package.replace(".", "/"))]
    hooks.copy_metadata = lambda dist: [(f"{dist}.dist-info", f"{dist}-{__version__}.dist-info")]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    Recorder.made = []
    names = {kind: type(kind, (Recorder,), {}) for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    spec = INSTALLER / "vsearch.spec"
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"), {**names, "SPECPATH": str(INSTALLER)})
    made: dict[str, list[Recorder]] = {}
    for recorder in Recorder.made:
        made.setdefault(recorder.kind, []).append(recorder)
    return made


def test_the_version_is_the_packages_everywhere():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__ == app_info.package_version()
    assert app_info.numeric_version("1.2.3rc1+local") == "1.2.3" and app_info.numeric_version("2.0") == "2.0.0"


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin"])
def test_the_spec_builds_the_named_executables_with_the_icon(platform, monkeypatch):
    made = _run_spec(platform, monkeypatch)
    exes = made["EXE"]
    (collect,) = made["COLLECT"]
    assert collect.kwargs["name"] == app_info.APP_NAME == app_info.DIST_DIR.name
    icon = {"linux": app_info.ICON_PNG, "win32": app_info.ICON_ICO, "darwin": app_info.ICON_ICNS}[platform]
    if platform == "win32":
        assert {(e.kwargs["name"], e.kwargs["console"]) for e in exes} == {
            (app_info.EXE_WINDOWS_GUI, False), (app_info.EXE_WINDOWS_CLI, True)}
        assert app_info.EXE_WINDOWS_GUI.lower() != app_info.EXE_WINDOWS_CLI.lower()
    else:
        (exe,) = exes
        expected = (app_info.EXE_MACOS, False) if platform == "darwin" else (app_info.EXE_LINUX, True)
        assert (exe.kwargs["name"], exe.kwargs["console"]) == expected
    if platform == "win32":  # Explorer's Details tab shows the package's version
        for exe in exes:
            resource = Path(exe.kwargs["version"]).read_text(encoding="utf-8")
            assert f"StringStruct('ProductVersion', '{__version__}')" in resource
            numbers = tuple(int(n) for n in app_info.numeric_version(__version__).split(".")) + (0,)
            assert f"filevers={numbers}" in resource
            assert f"StringStruct('OriginalFilename', '{exe.kwargs['name']}.exe')" in resource
    for exe in exes:
        assert Path(exe.kwargs["icon"]) == app_info.REPO_ROOT / icon
        assert exe.kwargs["upx"] is False
    (analysis,) = made["Analysis"]
    assert Path(analysis.args[0][0]) == INSTALLER / "launcher.py" and Path(analysis.args[0][0]).is_file()
    assert "vsearch_app.cli.main" in analysis.kwargs["hiddenimports"]
    assert "transformers" in analysis.kwargs["excludes"]
    assert not [name for name in analysis.kwargs["excludes"] if name.startswith("torch")]  # never torch submodules
    if platform == "darwin":
        (bundle,) = made["BUNDLE"]
        plist = bundle.kwargs["info_plist"]
        assert bundle.kwargs["name"] == f"{app_info.APP_NAME}.app"
        assert bundle.kwargs["bundle_identifier"] == app_info.BUNDLE_ID
        assert plist["CFBundleShortVersionString"] == bundle.kwargs["version"] == __version__
        assert plist["LSMinimumSystemVersion"] == app_info.MIN_MACOS
        assert plist["NSDesktopFolderUsageDescription"] and plist["NSRemovableVolumesUsageDescription"]
    else:
        assert "BUNDLE" not in made


def test_the_spec_drops_torch_tests_headers_and_tools_but_keeps_torch_shm_manager(monkeypatch):
    (analysis,) = _run_spec("linux", monkeypatch)["Analysis"]
    assert [d[0] for d in analysis.datas] == ["torch/bin/torch_shm_manager", "vsearch_app/resources/app.svg"]
    assert [b[0] for b in analysis.binaries] == ["torch/lib/libtorch_cpu.so", "torch/lib/libc10.so"]


def _iss_define(name: str) -> str:
    match = re.search(rf'^#define {name} (.+)$', ISS, re.MULTILINE)
    assert match, f"vsearch.iss has no #define {name}"
    return match.group(1).strip()


def test_the_inno_setup_script_matches_the_bundle():
    assert _iss_define("AppName") == f'"{app_info.APP_NAME}"'
    assert _iss_define("AppExe") == f'"{app_info.EXE_WINDOWS_GUI}.exe"'
    assert _iss_define("CliExe") == f'"{app_info.EXE_WINDOWS_CLI}.exe"'
    root = Path(_iss_define("RepoRoot").strip('"').replace("\\", "/"))
    assert (INSTALLER / "windows" / root).resolve() == REPO
    assert _iss_define("BundleDir") == 'RepoRoot + "\\' + str(app_info.DIST_DIR).replace("/", "\\") + '"'
    assert _iss_define("IconFile") == 'RepoRoot + "\\' + str(app_info.ICON_ICO).replace("/", "\\") + '"'
    assert f"AppId={{{app_info.WINDOWS_APP_ID}\n" in ISS  # Inno escapes the opening brace by doubling it
    assert "#ifndef AppVersion" in ISS and "AppVersion={#AppVersion}" in ISS  # the version comes from the build
    # The CPU installer's name is the one the workflows upload; the CUDA variant (/DCuda) adds "-cuda".
    output = re.search(r"^OutputBaseFilename=(.+)$", ISS, re.MULTILINE).group(1)
    assert output.replace("{#Variant}", "") + ".exe" == WINDOWS_SETUP.format(v="{#AppVersion}").replace(
        "VSearch", "{#AppName}")
    assert "PrivilegesRequired=lowest" in ISS and "{autoprograms}\\{#AppName}" in ISS
    install_delete = ISS.split("[InstallDelete]")[1].split("\n[")[0]
    assert 'Name: "{app}\\_internal"' in install_delete  # an upgrade starts from a clean runtime
    assert "UninstallSilent" in ISS and "MB_DEFBUTTON2" in ISS  # the library is kept unless the user says delete


def test_the_macos_script_and_entitlements_match_the_bundle():
    assert f'APP_NAME="{app_info.APP_NAME}"' in DMG_SCRIPT
    assert 'APP="dist/${APP_NAME}.app"' in DMG_SCRIPT
    assert 'DMG="dist/${APP_NAME}-${VERSION}-macos-arm64.dmg"' in DMG_SCRIPT
    assert '"$APP/Contents/MacOS/$APP_NAME"' in DMG_SCRIPT and app_info.EXE_MACOS == app_info.APP_NAME
    entitlements_path = re.search(r'^ENTITLEMENTS="(.+)"$', DMG_SCRIPT, re.MULTILINE).group(1)
    entitlements = plistlib.loads((REPO / entitlements_path).read_bytes())
    assert entitlements == {"com.apple.security.cs.allow-jit": True,
                            "com.apple.security.cs.allow-unsigned-executable-memory": True,
                            "com.apple.security.cs.disable-library-validation": True}
    assert "::warning::" in DMG_SCRIPT  # no secrets: a visible skip, not a silent unsigned release
    assert (INSTALLER / "macos" / "make_dmg.sh").stat().st_mode & 0o111, "make_dmg.sh must be executable"


def _steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_the_workflows_build_test_and_package_the_same_names():
    build = yaml.safe_load(BUILD_YML)
    release = yaml.safe_load(RELEASE_YML)
    triggers = build[True]  # YAML 1.1 reads the key `on` as True
    assert "pull_request" in triggers and "workflow_call" in triggers
    assert release[True]["push"]["tags"] == ["v*"]
    assert release["jobs"]["build"]["uses"] == "./.github/workflows/build.yml"
    matrix = build["jobs"]["bundle"]["strategy"]["matrix"]["include"]
    assert {row["os"] for row in matrix} == {"ubuntu-22.04", "windows-latest", "macos-14"}
    runs = "\n".join(step.get("run", "") for step in _steps(build))
    assert "-m pytest -q" in runs and "installer/build.py" in runs
    # The bundled self-test runs each OS's executable.
    assert f"dist/VSearch/{app_info.EXE_WINDOWS_CLI}.exe self-test" in runs
    assert f"dist/{app_info.APP_NAME}.app/Contents/MacOS/{app_info.EXE_MACOS} self-test" in runs
    assert f"dist/{app_info.APP_NAME}/{app_info.EXE_LINUX} self-test" in runs
    assert f"{app_info.EXE_WINDOWS_CLI}.exe\" self-test" in runs  # and the installed one
    # The installers are made from the scripts in the repository, with the package's version.
    assert 'installer\\windows\\vsearch.iss' in runs and '"/DAppVersion=$env:VERSION"' in runs
    assert 'installer/macos/make_dmg.sh "$VERSION"' in runs
    assert LINUX_ARCHIVE.format(v="${VERSION}") in runs
    assert WINDOWS_SETUP.format(v="$env:VERSION") in runs
    # What release.yml attaches is what build.yml and the scripts produce.
    publish = "\n".join(step.get("run", "") for step in _steps(release))
    for name in (WINDOWS_SETUP, MACOS_DMG, LINUX_ARCHIVE):
        assert f"packages/{name.format(v='${TAG#v}')}" in publish
    assert "tag ${GITHUB_REF#refs/tags/} does not match the package version" in runs
    for path in re.findall(r"installer[/\\][\w/\\.-]+\.(?:py|iss|sh)", runs):
        assert (REPO / path.replace("\\", "/")).is_file(), path


# Modules of the app that may import an excluded package, and why that is safe in the bundle.
EXCLUDED_IMPORT_ALLOWED = {
    ("vsearch_app.training.tiny_models", "transformers"):
        "builds the tests' and benchmarks' reference models; the app's self-test uses training.api.make_tiny_model",
}


def _imports(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_the_app_imports_is_excluded_from_the_bundle(monkeypatch):
    """An exclusion of something the app imports breaks the bundle only where that code runs (the self-test's
    QtTest was one): catch it here, in a second, rather than in the slow bundle test or a user's hands."""
    (analysis,) = _run_spec("linux", monkeypatch)["Analysis"]
    excluded = analysis.kwargs["excludes"]
    offending = []
    for path in sorted((REPO / "vsearch_app").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for name in _imports(path):
            for gone in excluded:
                if (name == gone or name.startswith(gone + ".")) and (module, gone) not in EXCLUDED_IMPORT_ALLOWED:
                    offending.append(f"{module} imports {name}")
    assert not offending, offending
