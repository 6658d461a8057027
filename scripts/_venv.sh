# shellcheck shell=bash
# Shared by scripts/setup, scripts/test, scripts/e2e and scripts/develop (source it from the
# repository root; not executable).
#
# Picks the Python interpreter and the test lane, then creates or refreshes that lane's virtual
# environment under .venv/<lane>-py<X.Y>/:
#
#   lane    interpreter   pin file                       Home Assistant
#   latest  python3.14    requirements_test.txt          newest with a test harness release
#   oldest  python3.13    requirements_test_oldest.txt   oldest supported (hacs.json)
#   newest  python3.14    requirements_newest.txt        newest release, no test harness
#
# Both test pin files include requirements_test_common.txt. The interpreter is $PYTHON if set (a
# command name or a path), else python3.14, else python3.13. The lane follows from its version,
# except that LANE=newest chooses the newest lane: the newest Home Assistant release without
# pytest-homeassistant-custom-component, for the end-to-end tests (scripts/e2e) and the demo
# only. Requirements are (re)installed only when the pin files, pyproject.toml or the interpreter
# changed (their hash is stored in the venv); the newest lane asks the package index for a newer
# release on every run.
#
# After venv_prepare: LANE, PYTHON_BIN, PYTHON_VERSION, VENV, REQUIREMENTS, HA_VERSION are set.
# venv_install_runtime (scripts/develop, scripts/e2e) adds what a real Home Assistant process
# needs beyond the test harness.

venv_die() {
  echo "error: $*" >&2
  exit 1
}

# Print the absolute path of a working interpreter for $1 (a command name or a path).
venv_resolve_python() {
  local cand=$1 path version
  if path=$(command -v "$cand" 2>/dev/null) && "$path" -c '' 2>/dev/null; then
    "$path" -c 'import sys; print(sys.executable)'
    return 0
  fi
  # A pyenv shim exists for every installed version but fails unless that version is selected
  # (pyenv global/local); use the installed interpreter directly instead.
  if [[ $cand != */* ]] && command -v pyenv >/dev/null 2>&1; then
    version=$(pyenv whence "$cand" 2>/dev/null | tail -n 1)
    path="$(pyenv root)/versions/$version/bin/$cand"
    if [[ -n $version && -x $path ]] && "$path" -c '' 2>/dev/null; then
      echo "$path"
      return 0
    fi
  fi
  return 1
}

venv_find_python() {
  local cand
  if [[ -n ${PYTHON:-} ]]; then
    PYTHON_BIN=$(venv_resolve_python "$PYTHON") || venv_die "PYTHON=$PYTHON does not run"
    return 0
  fi
  for cand in python3.14 python3.13; do
    if PYTHON_BIN=$(venv_resolve_python "$cand"); then
      return 0
    fi
  done
  venv_die "neither python3.14 (latest lane) nor python3.13 (oldest lane) found on PATH;" \
    "install one, set PYTHON=/path/to/python3.1x, or run the latest lane with" \
    "../shared/tools/py314 scripts/test"
}

# pip install ARGS... into $VENV.
venv_pip_install() {
  local pip_args=()
  # Home Assistant 2026.2.x declares Requires-Python >=3.13.2, but it and its test harness
  # (pytest-homeassistant-custom-component 0.13.316) run on 3.13.0; some machines that run
  # the oldest lane only have 3.13.0. Newer interpreters get pip's normal check.
  if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 13, 2))'; then
    pip_args+=(--ignore-requires-python)
  fi
  "$VENV/bin/python" -m pip install --quiet --progress-bar off \
    ${pip_args[@]+"${pip_args[@]}"} "$@"
}

venv_prepare() {
  local stamp wanted=${LANE:-}
  venv_find_python
  PYTHON_VERSION=$("$PYTHON_BIN" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  case $PYTHON_VERSION in
    3.13.*) LANE=oldest REQUIREMENTS=requirements_test_oldest.txt ;;
    3.14.*) LANE=latest REQUIREMENTS=requirements_test.txt ;;
    *) venv_die "Python $PYTHON_VERSION ($PYTHON_BIN) has no lane; use Python 3.13 or 3.14" ;;
  esac
  if [[ $wanted == newest && $LANE == latest ]]; then
    LANE=newest REQUIREMENTS=requirements_newest.txt
  elif [[ -n $wanted && $wanted != "$LANE" ]]; then
    venv_die "LANE=$wanted does not run on Python $PYTHON_VERSION ($PYTHON_BIN);" \
      "the lanes: oldest (3.13), latest (3.14), newest (3.14)"
  fi
  VENV=.venv/$LANE-py${PYTHON_VERSION%.*}

  if ! "$VENV/bin/python" -c '' 2>/dev/null; then
    echo "==> Creating $VENV with $PYTHON_BIN (the first install takes a few minutes)"
    rm -rf "$VENV"
    "$PYTHON_BIN" -m venv "$VENV"
  fi

  stamp=$({
    echo "$PYTHON_BIN $PYTHON_VERSION"
    cat "$REQUIREMENTS" requirements_test_common.txt pyproject.toml
  } | sha256sum | cut -d ' ' -f 1)
  if [[ $LANE == newest ]]; then # unpinned: whatever the package index has now
    echo "==> Installing or upgrading $REQUIREMENTS in $VENV (the newest Home Assistant)"
    venv_pip_install --upgrade -r "$REQUIREMENTS"
  elif [[ $(cat "$VENV/.requirements.sha256" 2>/dev/null) != "$stamp" ]]; then
    echo "==> Installing $REQUIREMENTS into $VENV"
    venv_pip_install -r "$REQUIREMENTS"
    # The library as the distribution aiovbus (pyproject.toml), editable: its tests import it
    # by that name (scripts/test-lib runs them against the built wheel instead).
    venv_pip_install --no-deps --editable .
    echo "$stamp" >"$VENV/.requirements.sha256"
  fi

  HA_VERSION=$("$VENV/bin/python" -c \
    'from importlib.metadata import version; print(version("homeassistant"))')
  echo "==> Lane: $LANE | Python $PYTHON_VERSION ($PYTHON_BIN)" \
    "| Home Assistant $HA_VERSION | venv: $VENV"
}

# The test harness brings Home Assistant but not everything its own runtime loads (the frontend,
# for one). Install the requirements of the integrations that the demo configuration of
# scripts/demo.py makes Home Assistant load, at the versions its manifests pin, under Home
# Assistant's package constraints. A no-op when they are installed.
venv_install_runtime() {
  local output constraints requirements=()
  output=$("$VENV/bin/python" scripts/demo.py requirements --missing)
  [[ -n $output ]] || return 0
  mapfile -t requirements <<<"$output"
  constraints=$("$VENV/bin/python" -c 'import homeassistant, pathlib
print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')
  echo "==> Installing Home Assistant's runtime requirements: ${requirements[*]}"
  venv_pip_install -c "$constraints" "${requirements[@]}"
}

# Re-run the calling script (its absolute path, then its arguments) where pseudo-terminals can be
# made: the serial tests serve the emulator on a pty. The latest and newest lanes run in a chroot
# (../shared/tools/py314) whose /dev has no devpts. As root, the script then runs in a mount
# namespace of its own with a devpts instance of its own, which nothing outside its processes
# sees; elsewhere (or if that fails) it runs as it is and the pty tests skip.
venv_with_ptys() {
  if [[ -e /dev/pts/ptmx || -n ${VBUS_PTYS:-} || $EUID != 0 ]] || ! command -v unshare >/dev/null; then
    return 0
  fi
  exec env VBUS_PTYS=1 unshare --mount --propagation unchanged sh -c '
    { mount --make-rprivate /dev &&
      mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts &&
      mount --bind /dev/pts/ptmx /dev/ptmx; } ||
      echo "warning: no pseudo-terminals here; the serial tests will skip" >&2
    exec "$0" "$@"' "$@"
}
