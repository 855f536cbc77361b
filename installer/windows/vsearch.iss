; Inno Setup 6 script: a per-user VSearch installer (no admin rights) from the bundle python installer\build.py made.
;
;   iscc /DAppVersion=0.1.0 installer\windows\vsearch.iss        -> dist\VSearch-0.1.0-windows-x64-setup.exe
;
; AppVersion must be the package's version (vsearch_app.__version__); the release workflow passes it. The app
; name, AppId, executables and icon path are those of installer/app_info.py (tests/installer/test_consistency.py).
; The user's library (%LOCALAPPDATA%\VSearch) and downloaded models (the Hugging Face cache) live outside {app}:
; upgrades never touch them, and the uninstaller asks before deleting the library (it keeps it when silent).

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z installer\windows\vsearch.iss
#endif
#define AppName "VSearch"
#ifdef Cuda
  #define Variant "-cuda"
#else
  #define Variant ""
#endif
#define AppExe "VSearch.exe"
#define CliExe "vsearch-cli.exe"
#define RepoRoot "..\.."
#define BundleDir RepoRoot + "\dist\VSearch"
#define IconFile RepoRoot + "\build\icons\app.ico"

[Setup]
; Fixed forever: a newer installer finds an older installation by it and upgrades in place.
AppId={{6D3F2A51-8C47-4B7E-9E2A-5F0C1D8B7A34}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppName}
; Per user, no UAC prompt: {autopf} is %LOCALAPPDATA%\Programs then, and the uninstall entry goes to HKCU. The
; dialog still lets an administrator choose an all-users install.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#RepoRoot}\dist
OutputBaseFilename={#AppName}-{#AppVersion}-windows-x64{#Variant}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes
; The CPU bundle is ~0.2 GB compressed, far below Inno's 4.2 GB single-file limit. The CUDA variant (/DCuda, see
; the README) is larger than GitHub's 2 GiB per-file cap: it ships as the setup exe plus .bin slices.
#ifdef Cuda
DiskSpanning=yes
DiskSliceSize=2000000000
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the whole runtime: files an older torch or Qt left behind must not be loaded by the new one.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Python's byte-code caches and logs written next to the program after installation.
Type: filesandordirs; Name: "{app}\_internal"

[Code]
// After the program is removed: offer to delete the library too. No is the default, and a silent uninstall keeps
// it, so an uninstall that precedes a reinstall loses nothing.
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  DataDir: String;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  DataDir := ExpandConstant('{localappdata}\{#AppName}');
  if (not DirExists(DataDir)) or UninstallSilent then
    exit;
  if MsgBox('Also delete your VSearch library in ' + DataDir + '?' + #13#10#13#10 +
            'It holds the photo index, thumbnails and settings. Your photos themselves are never touched, and ' +
            'downloaded models stay in the Hugging Face cache. Choose No to keep the library for a later install.',
            mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
  begin
    if not DelTree(DataDir, True, True, True) then
      MsgBox('Some files in ' + DataDir + ' could not be deleted (in use?). Delete the folder by hand.',
             mbInformation, MB_OK);
    RegDeleteKeyIncludingSubkeys(HKCU, 'Software\{#AppName}');
  end;
end;
