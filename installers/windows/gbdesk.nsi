; gbdesk's Windows installer: a per-user install that needs no administrator rights.
;
;   makensis /DVERSION=0.1.0 /DBUNDLE_DIR=dist\gbdesk /DICON=build\icons\gbdesk.ico ^
;            /DOUT_FILE=dist\gbdesk-0.1.0-setup.exe installers\windows\gbdesk.nsi
;
; BUNDLE_DIR is PyInstaller's one-folder bundle (gbdesk.exe, gbdesk-cli.exe, _internal\).
; Installs to %LOCALAPPDATA%\Programs\gbdesk, adds Start-menu and desktop shortcuts and an entry
; in Settings > Apps (HKCU). The uninstaller removes exactly what was installed: the user's
; settings, models and database (%LOCALAPPDATA%\gbdesk, the Hugging Face cache) stay.

Unicode true
!include "MUI2.nsh"
!include "FileFunc.nsh"

!ifndef BUNDLE_DIR
  !error "pass /DBUNDLE_DIR=<the PyInstaller bundle folder>"
!endif
!ifndef VERSION
  !error "pass /DVERSION=<gbdesk's version>"
!endif
!ifndef ICON
  !error "pass /DICON=<gbdesk.ico>"
!endif
!ifndef OUT_FILE
  !define OUT_FILE "gbdesk-${VERSION}-setup.exe"
!endif
!if ! /FileExists "${BUNDLE_DIR}\gbdesk.exe"
  !error "${BUNDLE_DIR}\gbdesk.exe is missing: build the bundle first"
!endif
!if ! /FileExists "${BUNDLE_DIR}\gbdesk-cli.exe"
  !error "${BUNDLE_DIR}\gbdesk-cli.exe is missing: build the bundle first"
!endif

!define APP_NAME "gbdesk"
!define PUBLISHER "General Bots"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\gbdesk"

Name "${APP_NAME}"
OutFile "${OUT_FILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\gbdesk"
InstallDirRegKey HKCU "Software\gbdesk" "InstallDir"
SetCompressor /SOLID lzma
VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "gbdesk installer"
VIAddVersionKey "LegalCopyright" "AGPL-3.0-or-later"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\gbdesk.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start gbdesk"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "gbdesk" SecMain
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  ; A reinstall replaces the old program files; nothing else in the folder is touched.
  RMDir /r "$INSTDIR\_internal"
  File /r "${BUNDLE_DIR}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortcut "$SMPROGRAMS\gbdesk.lnk" "$INSTDIR\gbdesk.exe" "" "$INSTDIR\gbdesk.exe" 0
  CreateShortcut "$DESKTOP\gbdesk.lnk" "$INSTDIR\gbdesk.exe" "" "$INSTDIR\gbdesk.exe" 0

  WriteRegStr HKCU "Software\gbdesk" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\gbdesk.exe"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" "$0"
SectionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\gbdesk.lnk"
  Delete "$DESKTOP\gbdesk.lnk"
  ; Only the files the installer put here; user data lives elsewhere and stays.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\gbdesk.exe"
  Delete "$INSTDIR\gbdesk-cli.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "Software\gbdesk"
SectionEnd
