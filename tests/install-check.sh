#!/usr/bin/env bash
# The checks of `make check` (see the Makefile) on what `make` builds and `make install` puts in
# place. Each mode prints what it checked and fails with a line saying what is wrong.
#
#   tests/install-check.sh static BINARY...
#       each BINARY is statically linked (no program interpreter). Built against glibc, it
#       cannot reach glibc's NSS: none of its entry points (getpwnam, getaddrinfo, ...) is
#       linked in, nor setlocale. A static glibc binary always contains dlopen, reached only
#       from gettext's character set conversion of assert messages, which needs a locale other
#       than "C" (setlocale): so dlopen is unreachable too. (musl has no NSS, and its static
#       dlopen only fails.) At run time (with strace), the tools open no shared object,
#       nsswitch.conf, gconv module or locale file.
#   tests/install-check.sh installed STAGE BINDIR MANDIR BASHCOMPDIR ZSHCOMPDIR FISHCOMPDIR CONFDIR
#       the staged tree of `make install DESTDIR=STAGE`: the four binaries (executable, and
#       the staged ones run), the four manual pages (`man --warnings -l` renders them without
#       a warning; SYNOPSIS, EXIT STATUS, ENVIRONMENT, FILES, MESSAGES, EXAMPLES and SEE ALSO
#       present), the completions (bash's loads and `complete -p` shows it; zsh and fish parse
#       theirs), and podman's drop-in CONFDIR/contain-oci.conf naming BINDIR/contain-oci
#   tests/install-check.sh uninstalled STAGE
#       `make uninstall DESTDIR=STAGE` left no file in STAGE
set -euo pipefail

tools=(pseudo contain inject contain-oci)

fail() {
    echo "install-check: $*" >&2
    exit 1
}

# Entry points of glibc's name service switch: a static binary calling any of them would load
# NSS modules with dlopen, which needs the shared glibc of the same version.
nss_symbols='^(getpw(nam|uid|ent)|getgr(nam|gid|ent)|getsp|getaddrinfo|gethostby|getservby|getprotoby|getnetby|getrpcby|initgroups|getgrouplist|getlogin|innetgr|setnetgrent|ether_|iconv_open|setlocale|newlocale)'

check_static() {
    local binary symbols
    for binary in "$@"; do
        [ -x "$binary" ] || fail "$binary: missing"
        if readelf -l "$binary" | grep 'Requesting program interpreter' >/dev/null; then
            fail "$binary: dynamically linked (it has a program interpreter)"
        fi
        # glibc's static start-up code; musl's has other names.
        if ! nm "$binary" | grep -E ' (__libc_setup_tls|__libc_start_main_impl)$' >/dev/null; then
            echo "ok: $binary is static, not against glibc (no NSS)"
            continue
        fi
        symbols=$(nm "$binary" | awk '$2 ~ /^[TtWw]$/ { print $3 }' | grep -E "$nss_symbols" || true)
        [ -z "$symbols" ] || fail "$binary: links glibc NSS or locale functions: $(echo $symbols)"
        echo "ok: $binary is static glibc and links no NSS entry point, no setlocale"
    done
    if command -v strace >/dev/null; then
        local dir=$1 trace
        dir=$(dirname "$1")
        trace=$(mktemp)
        # The tool's own process only (no -f): the commands it runs are not ours to check.
        strace -qq -o "$trace" -e trace=open,openat "$dir/pseudo" true
        strace -qq -o "$trace.2" -e trace=open,openat "$dir/inject" 1 true >/dev/null 2>&1 || true
        strace -qq -o "$trace.3" -e trace=open,openat "$dir/contain" --help >/dev/null
        if grep -hE '\.so|nsswitch|gconv|locale|/etc/(hosts|resolv)' "$trace" "$trace.2" "$trace.3"; then
            rm -f "$trace" "$trace".*
            fail "the tools opened the files above (NSS, dlopen or locales)"
        fi
        rm -f "$trace" "$trace".*
        echo "ok: pseudo, inject and contain open no shared object, NSS or locale file"
    fi
}

check_installed() {
    local stage=$1 bindir=$2 mandir=$3 bashdir=$4 zshdir=$5 fishdir=$6 confdir=$7 tool page
    local warnings
    for tool in "${tools[@]}"; do
        [ -x "$stage$bindir/$tool" ] || fail "$stage$bindir/$tool: missing or not executable"
        "$stage$bindir/$tool" --version | grep "^$tool " >/dev/null ||
            fail "$stage$bindir/$tool --version does not name $tool"

        page=$stage$mandir/man1/$tool.1
        [ -f "$page" ] || fail "$page: missing"
        warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
        [ -z "$warnings" ] || fail "$page: man --warnings: $warnings"
        for section in NAME SYNOPSIS DESCRIPTION OPTIONS 'EXIT STATUS' ENVIRONMENT FILES MESSAGES \
            EXAMPLES 'SEE ALSO'; do
            LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | grep -x "$section" >/dev/null ||
                fail "$page: no $section section"
        done

        [ -f "$stage$bashdir/$tool" ] || fail "$stage$bashdir/$tool: missing"
        bash -c 'source "$1" && complete -p "$2"' sh "$stage$bashdir/$tool" "$tool" >/dev/null ||
            fail "$stage$bashdir/$tool: bash does not load it (complete -p $tool)"
        [ -f "$stage$zshdir/_$tool" ] || fail "$stage$zshdir/_$tool: missing"
        if command -v zsh >/dev/null; then
            zsh -n "$stage$zshdir/_$tool" || fail "$stage$zshdir/_$tool: zsh cannot parse it"
        fi
        [ -f "$stage$fishdir/$tool.fish" ] || fail "$stage$fishdir/$tool.fish: missing"
        if command -v fish >/dev/null; then
            fish --no-execute "$stage$fishdir/$tool.fish" ||
                fail "$stage$fishdir/$tool.fish: fish cannot parse it"
        fi
    done
    # The synopsis shows each option's argument.
    LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$stage$mandir/man1/contain.1" 2>/dev/null |
        grep -- '\[-u MAP\]' >/dev/null || fail "contain.1: the synopsis lacks '[-u MAP]'"
    grep -xF "contain-oci = [\"$bindir/contain-oci\"]" "$stage$confdir/contain-oci.conf" >/dev/null ||
        fail "$stage$confdir/contain-oci.conf: missing, or does not name $bindir/contain-oci"
    grep '^runtime_supports_json = \[.*"contain-oci"' "$stage$confdir/contain-oci.conf" >/dev/null ||
        fail "$stage$confdir/contain-oci.conf: contain-oci is not in runtime_supports_json"
    echo "ok: $stage holds the binaries, manual pages (no man warnings) and completions of ${tools[*]}, and podman's drop-in"
}

check_uninstalled() {
    local stage=$1 left
    left=$(find "$stage" ! -type d)
    [ -z "$left" ] || fail "make uninstall left: $left"
    echo "ok: make uninstall left no file in $stage"
}

mode=${1:-}
shift || true
case "$mode" in
    static) check_static "$@" ;;
    installed) check_installed "$@" ;;
    uninstalled) check_uninstalled "$@" ;;
    *)
        echo "usage: tests/install-check.sh static|installed|uninstalled ARGS..." >&2
        exit 2
        ;;
esac
